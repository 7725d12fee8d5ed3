"""Where CPU time and memory went: this process, its PostgreSQL backends, the whole machine, RSS."""
from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import psutil


def mb(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)


def peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def descendants(pid: int) -> list[int]:
    """Child pids, recursively, from /proc/PID/task/*/children: far cheaper than psutil's scan of all processes."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found.extend(children)
            todo.extend(children)
    return found


def backend_cpu(dbname: str) -> dict[int, float]:
    """pid -> CPU seconds of the PostgreSQL backends connected to `dbname` (a local server only)."""
    found: dict[int, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            command = " ".join(proc.info["cmdline"] or [])
            if command.startswith("postgres:") and f" {dbname} " in command:
                times = proc.cpu_times()
                found[proc.pid] = times.user + times.system
        except psutil.Error:
            continue
    return found


def backend_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    if not after:
        return None  # not a local server, or no permission to see its processes
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _process_cpu() -> dict[tuple[int, float], tuple[str, float]]:
    """(pid, create time) -> (short command line, CPU seconds) of every process we may see."""
    found = {}
    for proc in psutil.process_iter(["cmdline", "name", "create_time", "cpu_times"]):
        info = proc.info
        if info["cpu_times"] is None:
            continue
        command = " ".join(info["cmdline"] or []) or info["name"] or "?"
        found[(proc.pid, info["create_time"])] = (command[:70], info["cpu_times"].user + info["cpu_times"].system)
    return found


class MachineLoad:
    """CPU-seconds the whole machine was busy during a measurement: other work on it skews the figures."""

    def __init__(self, per_process: bool = True) -> None:
        self.start = psutil.cpu_times()
        self.processes = _process_cpu() if per_process else {}

    @staticmethod
    def _busy(t) -> float:
        # guest time is already inside user/nice; steal is the hypervisor's, not this machine's work
        return (sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
                - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))

    def busy_since(self) -> float:
        return self._busy(psutil.cpu_times()) - self._busy(self.start)

    def top_others(self, exclude_pids: set[int], limit: int = 3) -> list[tuple[str, float]]:
        """The processes outside the benchmark that used the most CPU since the start."""
        deltas = []
        for key, (command, seconds) in _process_cpu().items():
            if key[0] in exclude_pids:
                continue
            used = seconds - self.processes.get(key, (command, 0.0))[1]
            if used >= 0.5:
                deltas.append((command, used))
        return sorted(deltas, key=lambda d: -d[1])[:limit]


def machine() -> dict[str, str]:
    """What the figures were measured on, for the summary and docs/benchmarks.md."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(line for line in lines if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {"nproc": str(os.cpu_count()), "memory": memory, "cpu": cpu, "python": platform.python_version(),
            "os": platform.platform()}
