"""Timing helpers: medians of repeated calls (wall and CPU), one timed call, printing as we go."""
from __future__ import annotations

import statistics
import time


def say(message: str = "") -> None:
    print(message, flush=True)


def median_ms(fn, runs: int, warmup: int = 1) -> tuple[float, list[float], float]:
    """Median wall time (ms) of `runs` calls after `warmup` calls, all wall times, and the median CPU time of
    this process (ms): on a busy machine the wall time waits for a CPU, the CPU time much less."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(times), times, statistics.median(cpu)


def timed(label: str, function, width: int = 58):
    """Call `function`, print its wall and CPU seconds and its result; returns the wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    say(f"{label:<{width}} {wall:8.2f} s wall  {cpu:7.2f} s CPU  {result}")
    return wall


def wait_until(condition, what: str, timeout: float, every: float = 0.05, alive=None):
    """Poll `condition()` until it returns something true (returned); `alive()` may raise meanwhile."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(every)
    return value
