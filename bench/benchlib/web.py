"""The web app as production runs it: gunicorn (`wsgi:app`, the Procfile's gthread workers) on the bench database
and Redis, started, waited for until /healthz answers, its CPU and RSS read, stopped (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from . import ROOT
from .sampling import descendants
from .workers import die_with_parent, free_port, process_env


class Gunicorn:
    def __init__(self, database_url: str, redis_url: str, log_dir: Path, workers: int, threads: int,
                 env: dict[str, str] | None = None):
        self.port = free_port()
        self.workers, self.threads, self.log_dir = workers, threads, log_dir
        self.env = process_env(database_url, redis_url, **(env or {}))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log_dir / "gunicorn.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                 "--threads", str(self.threads), "--access-logfile", str(self.log_dir / "access.log"), "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}: see {self.log_dir}/gunicorn.log")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                    if response.status == 200 and len(self.pids()) > self.workers:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s: see {self.log_dir}")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)] if self.proc else []

    def cpu_seconds(self) -> float:
        """CPU of the master and its (live) workers."""
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
        return total

    def rss_mb(self) -> list[float]:
        """RSS of each worker process (not the master), MB."""
        found = []
        for pid in self.pids()[1:]:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid).memory_info().rss / (1024 * 1024))
        return found

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)  # graceful: the workers finish their requests
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
