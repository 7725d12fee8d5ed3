"""Real RQ worker processes (`python worker.py <queue>`), as production runs them: started against the bench
database and Redis, waited for until registered, their RSS and CPU sampled, stopped (warm, then hard)."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
from redis import Redis

from . import ROOT
from .sampling import descendants

# Never handed to a bench's workers: they send mail only to the bench's own SMTP sink.
DROPPED_ENV = ("MAIL_USERNAME", "MAIL_PASSWORD")


def die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the bench process dies without cleaning up (preexec_fn: prctl only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a process the bench starts (worker, scheduler, flask CLI)."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "FLASK_APP": "wsgi.py",
                "ARBILL_ENV": "development", "PYTHONUNBUFFERED": "1", **extra})
    return env


class Workers:
    """`count` worker processes on `queue`, each in its own session (a hard stop takes its work horse too)."""

    def __init__(self, queue: str, count: int, database_url: str, redis_url: str, log_dir: Path,
                 env: dict[str, str] | None = None, names: list[str] | None = None):
        self.queue, self.count, self.redis_url, self.log_dir = queue, count, redis_url, log_dir
        self.env = process_env(database_url, redis_url, **(env or {}))
        tag = uuid.uuid4().hex[:6]
        self.names = names or [f"bench-{queue}-{tag}-{i}" for i in range(count)]
        self.procs: list[subprocess.Popen] = []
        self.handles: list[psutil.Process] = []
        self.peak_single = 0  # bytes: the largest RSS of any one worker process (main or work horse)
        self.peak_total = 0  # bytes: the largest sum over all worker processes at one sample
        self.peak_processes = 0  # worker processes alive at the sample with the largest sum
        self.peak_by_worker: list[int] = [0] * count  # bytes: per worker, its largest process
        self.peak_main = 0  # bytes: the largest RSS of a worker main process
        self.peak_horse = 0  # bytes: the largest RSS of a child (work horse, RQ's scheduler)
        # Per worker, its main process (which lives through every job; a work horse is forked per job): RSS at
        # the first and the last sample and its peak, to see whether it stays flat over a long run; and the
        # peak of its work horses.
        self.main_first: list[int] = [0] * count
        self.main_last: list[int] = [0] * count
        self.main_peak: list[int] = [0] * count
        self.horse_peak: list[int] = [0] * count
        self.horses_seen: set[int] = set()
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self, timeout: float = 90.0) -> float:
        """Start the processes and wait until all are registered with RQ; returns the seconds that took."""
        from rq import Worker

        started = time.perf_counter()
        for i, name in enumerate(self.names):
            with open(self.log_dir / f"worker-{i}.log", "wb") as log:  # the worker keeps its own handle
                proc = subprocess.Popen([sys.executable, "worker.py", self.queue, "--name", name], cwd=ROOT,
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509
            self.procs.append(proc)
            self.handles.append(psutil.Process(proc.pid))
        redis = Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                self.check_alive()
                ready = {w.name for w in Worker.all(connection=redis)} & set(self.names)
                if len(ready) == self.count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(ready)} of {self.count} workers registered within {timeout:.0f} s; "
                                       f"see {self.log_dir}")
                time.sleep(0.05)
        finally:
            redis.close()
        self.sample()
        return time.perf_counter() - started

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise RuntimeError(f"worker {i} exited with {proc.returncode}: see {self.log_dir}/worker-{i}.log")

    def family(self, i: int) -> list[int]:
        """Worker i's pid and its descendants' (work horse, RQ's scheduler)."""
        return [self.handles[i].pid, *descendants(self.handles[i].pid)]

    def sample(self) -> None:
        total, alive = 0, 0
        for i, handle in enumerate(self.handles):
            for pid in self.family(i):
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                total, alive = total + rss, alive + 1
                self.peak_single = max(self.peak_single, rss)
                self.peak_by_worker[i] = max(self.peak_by_worker[i], rss)
                if pid == handle.pid:
                    self.peak_main = max(self.peak_main, rss)
                    self.main_first[i] = self.main_first[i] or rss
                    self.main_last[i] = rss
                    self.main_peak[i] = max(self.main_peak[i], rss)
                else:
                    self.peak_horse = max(self.peak_horse, rss)
                    self.horse_peak[i] = max(self.horse_peak[i], rss)
                    self.horses_seen.add(pid)
        if total > self.peak_total:
            self.peak_total, self.peak_processes = total, alive

    def rss_per_worker(self) -> str:
        """Per worker: its main process's RSS first/peak/last and its children's peak, MB."""
        rows = zip(self.main_first, self.main_peak, self.main_last, self.horse_peak)
        return "; ".join(f"worker {i}: {first / 2**20:.0f}/{peak / 2**20:.0f}/{last / 2**20:.0f} MB, children "
                         f"(work horses, RQ's scheduler) peak {horse / 2**20:.0f} MB"
                         for i, (first, peak, last, horse) in enumerate(rows))

    def start_sampling(self, interval: float = 0.1) -> None:
        """Sample RSS in a thread (also while this process is busy), until stop_sampling()."""
        def loop():
            while not self._stop_sampling.wait(interval):
                self.sample()

        self._stop_sampling.clear()
        self._sampler = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._stop_sampling.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU of the workers and of the work horses they have reaped (call before stop())."""
        user = system = 0.0
        for handle in self.handles:
            try:
                t = handle.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user += t.user + t.children_user
            system += t.system + t.children_system
        return user, system

    def rq_stats(self) -> list[tuple[str, int, int, float]]:
        """(name, successful jobs, failed jobs, total working time s) per worker, as RQ recorded them."""
        from rq import Worker

        redis = Redis.from_url(self.redis_url)
        try:
            found = [w for w in Worker.all(connection=redis) if w.name in self.names]
            return sorted((w.name, w.successful_job_count, w.failed_job_count, w.total_working_time) for w in found)
        finally:
            redis.close()

    def kill_hard(self, i: int) -> int:
        """SIGKILL worker i, its work horse and its scheduler, as a crashed machine would; how many processes."""
        pids = self.family(i)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_sampling()
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)  # warm shutdown: finish the current job, then stop
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: the worker and its work horse
                proc.wait()
        self.procs = []
