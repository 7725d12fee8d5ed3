#!/usr/bin/env python
"""Benchmark of the billing run engine: prints figures, never passes or fails a test.

    python bench/billing_run.py --contracts N [--workers W] --db URL [--redis URL] [--chunk-size S]

What it does, on a throw-away database `arbill_bench_<random>` created on the server of --db
(dropped at the end, also on an error, Ctrl-C or SIGTERM):

1. migrates it (Flask-Migrate `upgrade()`), seeds one legal entity and N contracts (1-3 lines,
   mixed frequencies and currencies, each with 1-3 due periods as of --as-of) with COPY;
2. measures, each time from the same seeded state (run tables truncated in between):
   inline   `start_billing_run(..., enqueue=False)` + `execute_run(inline=True)` in this process;
   fanned   W `python worker.py billing` processes started first, then `start_billing_run()`
            (enqueued), polled until the run is finished;
   floor    PostgreSQL COPYing as many invoice, invoice_line and event rows as the inline run
            wrote into the real tables (their indexes, CHECKs and foreign keys: what storing
            those rows costs any engine on this schema); the rows are generated and encoded
            beforehand, untimed. Two references are printed too: the same COPY into scratch
            tables `LIKE x INCLUDING ALL` (the real indexes and CHECKs, no foreign keys) and
            `LIKE x INCLUDING DEFAULTS` (no indexes, no constraints: raw COPY speed);
3. checks what each run wrote: invoices == due periods seeded, invoice numbers 1..M per year
   without gaps, lines and outbox events as expected, the same totals inline and fanned out;
4. prints contracts per second, the ratios to the floor, the peak RSS of this process and of
   the workers (sampled with psutil while polling), and where the CPU went: this process, its
   PostgreSQL backend (local server), the workers and their work horses, and how busy the whole
   machine was (other work on a shared machine inflates every wall time; the inline run's Python +
   PostgreSQL CPU time is the figure that load hardly moves).

`--profile FILE` runs the inline measurement under cProfile (slower: its figure is then not a
benchmark figure), writes the stats to FILE and prints the top functions by cumulative time.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil
import psycopg
from redis import Redis

from benchlib import BenchDatabase, clean_up, make_config

# Tables a billing run writes; emptied before each measurement (the contracts stay).
RUN_TABLES = ("invoice_lines", "invoices", "events", "billing_run_items", "billing_runs",
              "invoice_sequences", "audit_entries")
SEED_BATCH = 10_000

FREQUENCIES = (("monthly", 70), ("weekly", 10), ("quarterly", 8), ("annual", 7), ("daily", 5))
CURRENCIES = (("EUR", 75), ("USD", 15), ("JPY", 6), ("BHD", 4))
DUE_PERIODS = ((1, 60), (2, 30), (3, 10))  # 1.5 invoices per contract on average
LINE_COUNTS = ((1, 50), (2, 35), (3, 15))
VAT_RATES = ((Decimal(19), 60), (Decimal(7), 20), (Decimal(0), 10), (Decimal(20), 10))
QUANTITIES = (Decimal(1), Decimal(1), Decimal(1), Decimal(2), Decimal(5), Decimal("0.5"), Decimal("12.25"))
PLANS = ("Basic", "Team", "Business", "Enterprise", "Support", "Storage 100 GB", "Seats")
MONTH_STEPS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}
DAY_STEPS = {"daily": 1, "weekly": 7}


def weighted(rng: random.Random, table):
    values, weights = zip(*table)
    return rng.choices(values, weights)[0]


def mb(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)


def peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(message: str = "") -> None:
    print(message, flush=True)


# ------------------------------------------------------------------ seeding
@dataclass
class Seeded:
    entity_id: int
    contracts: int
    customers: int
    lines: int
    expected_invoices: int
    expected_invoice_lines: int
    by_frequency: dict[str, int] = field(default_factory=dict)
    by_currency: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def contract_start(rng: random.Random, frequency: str, due: int, as_of: date) -> date:
    """A start date giving exactly `due` periods due by `as_of` (billing in advance).

    Built from the definition, not from app.billing.periods: the last due period (index due-1)
    starts in (as_of - one step, as_of]; the contract starts (due-1) steps before it. Days stay
    <= 28 so no month-end clamping is involved.
    """
    if frequency in DAY_STEPS:
        step = DAY_STEPS[frequency]
        last = as_of - timedelta(days=rng.randrange(step))
        return last - timedelta(days=(due - 1) * step)
    step = MONTH_STEPS[frequency]
    # j months before as_of's month: j == 0 needs day <= as_of.day, j == step needs day > as_of.day
    # (period `due` then starts in as_of's month after as_of), anything between takes any day.
    choices = [j for j in range(step + 1) if not (j == step and as_of.day >= 28)]
    j = rng.choice(choices)
    if j == 0:
        day = rng.randint(1, min(as_of.day, 28))
    elif j == step:
        day = rng.randint(as_of.day + 1, 28)
    else:
        day = rng.randint(1, 28)
    index = as_of.year * 12 + as_of.month - 1 - j - (due - 1) * step
    year, month = divmod(index, 12)
    return date(year, month + 1, day)


def seed(app, bench: BenchDatabase, n_contracts: int, as_of: date, rng: random.Random) -> Seeded:
    """One legal entity (through the app), customers, contracts and lines (COPY, in batches)."""
    from app.audit import Actor
    from app.billing.periods import due_period_count
    from app.extensions import db
    from app.records.entities import EntityInput, create_legal_entity

    started = time.perf_counter()
    with app.app_context():
        entity = create_legal_entity(EntityInput(code="BENCH", name="Bench Billing GmbH", country="DE",
                                                 currency="EUR", vat_id="DE136695976", payment_terms_days=14,
                                                 address_line1="Friedrichstraße 68", postcode="10117",
                                                 city="Berlin"),
                                     Actor.system("bench"))
        db.session.commit()
        entity_id = entity.id
        db.session.remove()

    n_customers = max(1, n_contracts // 2)
    now = datetime.now(UTC)
    seeded = Seeded(entity_id, n_contracts, n_customers, 0, 0, 0)
    with psycopg.connect(bench.conninfo) as conn, conn.cursor() as cur:
        for first in range(1, n_customers + 1, SEED_BATCH):
            with cur.copy("COPY customers (id, legal_entity_id, name, email, payment_method, address_line1, "
                          "postcode, city, country, created_at) FROM STDIN") as copy:
                for cid in range(first, min(first + SEED_BATCH, n_customers + 1)):
                    copy.write_row((cid, entity_id, f"Customer {cid:07d}", f"billing{cid}@example.com",
                                    "manual", f"Hauptstraße {cid}", "10115", "Berlin", "DE", now))
        line_id = 0
        for first in range(1, n_contracts + 1, SEED_BATCH):
            contracts, lines = [], []
            for contract_id in range(first, min(first + SEED_BATCH, n_contracts + 1)):
                frequency = weighted(rng, FREQUENCIES)
                currency = weighted(rng, CURRENCIES)
                due = weighted(rng, DUE_PERIODS)
                start = contract_start(rng, frequency, due, as_of)
                # Self-check of the construction (cheap): the engine's own count must agree.
                assert due_period_count(start, frequency, as_of) == due, (start, frequency, due)
                terms = 30 if rng.random() < 0.2 else None
                contracts.append((contract_id, entity_id, rng.randint(1, n_customers), f"BENCH-{contract_id:07d}",
                                  "active", currency, frequency, start, None, terms, now))
                n_lines = weighted(rng, LINE_COUNTS)
                for position in range(1, n_lines + 1):
                    line_id += 1
                    if currency == "JPY":
                        price = Decimal(rng.randrange(500, 200_000))
                    elif rng.random() < 0.1:
                        price = Decimal(rng.randrange(100, 10_000_000)).scaleb(-4)
                    else:
                        price = Decimal(rng.randrange(100, 1_000_000)).scaleb(-2)
                    lines.append((line_id, contract_id, position, f"{rng.choice(PLANS)} ({frequency})",
                                  rng.choice(QUANTITIES), price, weighted(rng, VAT_RATES)))
                seeded.expected_invoices += due
                seeded.expected_invoice_lines += due * n_lines
                seeded.by_frequency[frequency] = seeded.by_frequency.get(frequency, 0) + 1
                seeded.by_currency[currency] = seeded.by_currency.get(currency, 0) + 1
            with cur.copy("COPY contracts (id, legal_entity_id, customer_id, reference, status, currency, "
                          "frequency, start_date, end_date, payment_terms_days, created_at) FROM STDIN") as copy:
                for row in contracts:
                    copy.write_row(row)
            with cur.copy("COPY contract_lines (id, contract_id, position, description, quantity, unit_price, "
                          "vat_rate) FROM STDIN") as copy:
                for row in lines:
                    copy.write_row(row)
        seeded.lines = line_id
        for table in ("customers", "contracts", "contract_lines"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE customers, contracts, contract_lines")
    seeded.seconds = time.perf_counter() - started
    return seeded


def set_chunk_size(app, chunk_size: int | None) -> int:
    """The billing agent's chunk size in the bench database (its configuration, as the UI sets it)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import AgentDefinition

    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        if chunk_size is not None:
            agent.configuration = {**(agent.configuration or {}), "chunk_size": chunk_size}
            db.session.commit()
        size = int((agent.configuration or {}).get("chunk_size", 2000))
        db.session.remove()
    return size


def reset_run_tables(bench: BenchDatabase) -> None:
    """Back to the seeded state: no runs, invoices, events or audit entries; flushed to disk."""
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(RUN_TABLES) + " RESTART IDENTITY CASCADE")
        conn.execute("CHECKPOINT")


# ------------------------------------------------------------------ checks
@dataclass
class RunOutcome:
    mode: str
    seconds: float
    run_id: int
    status: str
    db_seconds: float | None  # finished_at - queued_at, as the run records it
    contracts_processed: int
    contracts_failed: int
    invoices: int
    invoice_lines: int
    events: int
    issued_events: int
    years: list[tuple[int, int, int, int, int]]  # year, min, max, count, distinct
    totals: dict[str, str]
    problems: list[str]
    rss_self_mb: float | None = None
    rss_workers: dict[str, float] | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # where CPU seconds were spent during the run
    others: list[tuple[str, float]] = field(default_factory=list)  # busiest processes outside the benchmark


def inspect_run(bench: BenchDatabase, mode: str, seconds: float, run_id: int, seeded: Seeded) -> RunOutcome:
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        status, processed, failed, created, queued_at, finished_at = conn.execute(
            "SELECT status, contracts_processed, contracts_failed, invoices_created, queued_at, finished_at "
            "FROM billing_runs WHERE id = %s", (run_id,)).fetchone()
        invoices = conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM invoice_lines").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        issued = conn.execute("SELECT count(*) FROM events WHERE type = 'invoice.issued'").fetchone()[0]
        years = conn.execute(
            "SELECT sequence_year, min(sequence_number), max(sequence_number), count(*), "
            "count(DISTINCT sequence_number) FROM invoices GROUP BY sequence_year ORDER BY sequence_year").fetchall()
        totals = dict(conn.execute(
            "SELECT currency, sum(total_amount)::text FROM invoices GROUP BY currency ORDER BY currency").fetchall())
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT contract_id, period_start FROM invoices "
            "GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0]
    problems = []
    if status != "completed":
        problems.append(f"run status is {status}, not completed")
    if processed != seeded.contracts:
        problems.append(f"{processed} contracts processed, not {seeded.contracts}")
    if failed:
        problems.append(f"{failed} contracts failed")
    if invoices != seeded.expected_invoices:
        problems.append(f"{invoices} invoices, expected {seeded.expected_invoices} (the due periods seeded)")
    if created != invoices:
        problems.append(f"the run says {created} invoices created, the table has {invoices}")
    if lines != seeded.expected_invoice_lines:
        problems.append(f"{lines} invoice lines, expected {seeded.expected_invoice_lines}")
    if issued != invoices:
        problems.append(f"{issued} invoice.issued events for {invoices} invoices")
    if duplicates:
        problems.append(f"{duplicates} (contract, period) pairs invoiced twice")
    for year, low, high, count, distinct in years:
        if year is None:
            problems.append(f"{count} invoices without a number")
        elif not (low == 1 and high == count == distinct):
            problems.append(f"numbers of {year}: min {low}, max {high}, count {count}, distinct {distinct}: not 1..M")
    db_seconds = (finished_at - queued_at).total_seconds() if finished_at and queued_at else None
    return RunOutcome(mode, seconds, run_id, status, db_seconds, processed, failed, invoices, lines, events, issued,
                      [tuple(y) for y in years], totals, problems)


def print_outcome(o: RunOutcome, seeded: Seeded) -> None:
    say(f"  wall time            {o.seconds:10.2f} s   (run's own finished_at - queued_at: "
        f"{o.db_seconds:.2f} s)" if o.db_seconds is not None else f"  wall time {o.seconds:.2f} s")
    say(f"  contracts per second {seeded.contracts / o.seconds:10,.0f}")
    say(f"  run                  #{o.run_id} {o.status}, {o.contracts_processed:,} processed, "
        f"{o.contracts_failed} failed")
    say(f"  invoices             {o.invoices:10,}   expected {seeded.expected_invoices:,} "
        f"({o.invoices / max(1, seeded.contracts):.2f} per contract)")
    say(f"  invoice lines        {o.invoice_lines:10,}   expected {seeded.expected_invoice_lines:,}")
    say(f"  outbox events        {o.events:10,}   of which invoice.issued {o.issued_events:,}")
    for year, low, high, count, distinct in o.years:
        say(f"  numbers {year}         {low}..{high}, count {count:,}, distinct {distinct:,}")
    say(f"  totals               {', '.join(f'{c} {t}' for c, t in o.totals.items())}")
    if o.cpu:
        capacity = o.seconds * (os.cpu_count() or 1)
        say("  CPU during the run   " + ", ".join(f"{k} {v:.1f} s" for k, v in o.cpu.items() if k != "machine busy")
            + f"; the machine ({os.cpu_count()} CPUs) was {100 * o.cpu['machine busy'] / capacity:.0f}% busy")
    if o.others:
        say("  busiest other work   " + "; ".join(f"{command!r} {seconds:.1f} s" for command, seconds in o.others))
    say("  correctness          " + ("OK" if not o.problems else "PROBLEMS: " + "; ".join(o.problems)))


# ------------------------------------------------------------------ CPU accounting
def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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

    def __init__(self) -> None:
        self.start = psutil.cpu_times()
        self.processes = _process_cpu()

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


def backend_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    if not after:
        return None  # not a local server, or no permission to see its processes
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# ------------------------------------------------------------------ inline
def measure_inline(app, bench, seeded, as_of, profile_path: str | None) -> RunOutcome:
    from app.audit import Actor
    from app.billing.runs import execute_run, start_billing_run
    from app.extensions import db
    from app.models import LegalEntity

    reset_run_tables(bench)
    with app.app_context():
        entity = db.session.get(LegalEntity, seeded.entity_id)
        db.session.commit()  # the pooled connection now exists: its backend is counted from here
        backends_before, cpu_before, machine = backend_cpu(bench.name), self_cpu(), MachineLoad()
        profiler = None
        if profile_path:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        result = start_billing_run(entity, as_of, "cli", Actor.system("bench"), enqueue=False)
        run_id = result.run.id
        execute_run(run_id, inline=True)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        cpu_self, backends_after, busy = self_cpu() - cpu_before, backend_cpu(bench.name), machine.busy_since()
        others = machine.top_others({os.getpid(), *backends_after})
        db.session.remove()
    outcome = inspect_run(bench, "inline", seconds, run_id, seeded)
    outcome.rss_self_mb = peak_rss_mb()
    outcome.cpu["this process"] = cpu_self
    server = backend_cpu_delta(backends_before, backends_after)
    if server is not None:
        outcome.cpu["PostgreSQL backend"] = server
        outcome.cpu["everything else on the machine"] = max(0.0, busy - cpu_self - server)
    outcome.cpu["machine busy"] = busy
    outcome.others = others
    if profiler is not None:
        import pstats

        profiler.dump_stats(profile_path)
        say(f"  cProfile stats written to {profile_path}; top 30 by cumulative time:")
        pstats.Stats(profile_path, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    return outcome


# ------------------------------------------------------------------ fanned out
def _descendants(pid: int) -> list[int]:
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


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the bench process dies without cleaning up."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Workers:
    def __init__(self, count: int, bench: BenchDatabase, redis_url: str, log_dir: Path):
        self.count, self.bench, self.redis_url, self.log_dir = count, bench, redis_url, log_dir
        self.procs: list[subprocess.Popen] = []
        self.handles: list[psutil.Process] = []
        self.peak_single = 0  # bytes: the largest RSS of any one worker process (main or work horse)
        self.peak_total = 0  # bytes: the largest sum over all worker processes at one sample
        self.peak_by_worker: list[int] = [0] * count

    def start(self, timeout: float = 60.0) -> None:
        from rq import Worker

        env = {**os.environ, "DATABASE_URL": self.bench.sqlalchemy_url, "REDIS_URL": self.redis_url,
               "FLASK_APP": "wsgi.py", "ARBILL_ENV": "development", "PYTHONUNBUFFERED": "1"}
        tag = uuid.uuid4().hex[:6]
        for i in range(self.count):
            with open(self.log_dir / f"worker-{i}.log", "wb") as log:  # the worker keeps its own handle
                # preexec_fn: no threads run here, and the hook only calls prctl()
                proc = subprocess.Popen(
                    [sys.executable, "worker.py", "billing", "--name", f"bench-{tag}-{i}"],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
            self.procs.append(proc)
            self.handles.append(psutil.Process(proc.pid))
        redis = Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while True:
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {i} exited with {proc.returncode}: see {self.log_dir}/worker-{i}.log")
            ready = [w for w in Worker.all(connection=redis) if w.name.startswith(f"bench-{tag}-")]
            if len(ready) == self.count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(ready)} of {self.count} workers registered within {timeout:.0f} s")
            time.sleep(0.05)
        redis.close()
        self.sample()

    def sample(self) -> None:
        total = 0
        for i, handle in enumerate(self.handles):
            for pid in (handle.pid, *_descendants(handle.pid)):  # the worker, its work horse, its scheduler
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
                self.peak_by_worker[i] = max(self.peak_by_worker[i], rss)
        self.peak_total = max(self.peak_total, total)

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

    def stop(self, timeout: float = 30.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)  # warm shutdown: finish the current job, then stop
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the worker and its work horse
                proc.wait()
        self.procs = []


def measure_fanned(app, bench, seeded, as_of, workers_count, redis_url, log_dir, timeout) -> RunOutcome:
    from app.audit import Actor
    from app.billing.runs import start_billing_run
    from app.extensions import db
    from app.models import LegalEntity

    reset_run_tables(bench)
    Redis.from_url(redis_url).flushdb()
    workers = Workers(workers_count, bench, redis_url, log_dir)
    try:
        workers.start()
        say(f"  {workers_count} workers registered (logs in {log_dir})")
        cpu_idle = workers.cpu_seconds()  # their start-up
        with app.app_context(), psycopg.connect(bench.conninfo, autocommit=True) as poll:
            entity = db.session.get(LegalEntity, seeded.entity_id)
            machine, cpu_before = MachineLoad(), self_cpu()
            started = time.perf_counter()
            result = start_billing_run(entity, as_of, "cli", Actor.system("bench"), enqueue=True)
            run_id = result.run.id
            db.session.remove()
            deadline = time.monotonic() + timeout
            last_report = time.monotonic()
            while True:
                status, processed, total = poll.execute(
                    "SELECT status, contracts_processed, contracts_total FROM billing_runs WHERE id = %s",
                    (run_id,)).fetchone()
                if status not in ("pending", "running"):
                    break
                workers.sample()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run {run_id} still {status} after {timeout:.0f} s "
                                       f"({processed}/{total}); see {log_dir}")
                if time.monotonic() - last_report > 10:
                    say(f"  ... {status} {processed:,}/{total:,}")
                    last_report = time.monotonic()
                time.sleep(0.1)  # polling and sampling cost this process ~1-2 % of a CPU at this rate
            seconds = time.perf_counter() - started
        workers.sample()
        time.sleep(0.2)  # let the last work horse be reaped, so its CPU is counted
        user, system = workers.cpu_seconds()
        cpu_workers = (user - cpu_idle[0], system - cpu_idle[1])
        busy, cpu_self = machine.busy_since(), self_cpu() - cpu_before
        mine = {os.getpid(), *backend_cpu(bench.name)}
        for handle in workers.handles:
            mine.update((handle.pid, *_descendants(handle.pid)))
        others = [o for o in machine.top_others(mine, limit=6) if bench.name not in o[0]][:3]
    finally:
        workers.stop()
    outcome = inspect_run(bench, "fanned", seconds, run_id, seeded)
    outcome.rss_self_mb = peak_rss_mb()
    outcome.rss_workers = {"peak_single_mb": mb(workers.peak_single), "peak_total_mb": mb(workers.peak_total),
                           "by_worker_mb": [round(mb(b), 1) for b in workers.peak_by_worker]}
    outcome.cpu["workers and work horses"] = sum(cpu_workers)
    outcome.cpu["... of which system (kernel)"] = cpu_workers[1]
    outcome.cpu["this process (polling)"] = cpu_self
    outcome.cpu["machine busy"] = busy  # includes PostgreSQL and anything else running
    outcome.others = others
    return outcome


# ------------------------------------------------------------------ the floor
FLOOR_COLUMNS = {
    "invoices": ("id", "legal_entity_id", "customer_id", "contract_id", "billing_run_id", "period_start",
                 "period_end", "number", "sequence_year", "sequence_number", "issue_date", "due_date", "currency",
                 "net_amount", "tax_amount", "total_amount", "amount_due", "status", "void_reason", "created_at",
                 "posted_at"),
    "invoice_lines": ("id", "invoice_id", "position", "description", "quantity", "unit_price", "vat_rate",
                      "net_amount"),
    "events": ("id", "type", "payload", "legal_entity_id", "billing_run_id", "depth", "created_at",
               "dispatched_at"),
}


def _copy_text(values) -> str:
    """One row in COPY's text format."""
    out = []
    for value in values:
        if value is None:
            out.append("\\N")
        else:
            out.append(str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                       .replace("\r", "\\r"))
    return "\t".join(out) + "\n"


FLOOR_RUN_ID = 1  # the billing_runs row the floor's rows point at (created for the "real tables" variant)


def generate_floor_rows(directory: Path, invoices: int, lines: int, events: int, n_contracts: int,
                        entity_id: int, as_of: date, rng: random.Random) -> dict[str, Path]:
    """Rows shaped like the run's (same columns, similar widths), encoded to files: memory stays flat.

    They satisfy the real tables' constraints (unique contract/period and numbers, existing
    customers, contracts and entity), so they can also be COPYed into the real tables.
    """
    now = datetime.now(UTC).isoformat()
    due = as_of + timedelta(days=14)
    year = as_of.year
    files = {name: directory / f"floor_{name}.copy" for name in FLOOR_COLUMNS}
    currencies = [c for c, _ in CURRENCIES]
    with open(files["invoices"], "w") as inv, open(files["events"], "w") as ev:
        for i in range(1, invoices + 1):
            net = Decimal(rng.randrange(100, 5_000_000)).scaleb(-2)
            tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
            # Unique (contract, period start), as the real table (and the indexed floor) demands.
            contract = (i - 1) % n_contracts + 1
            currency = rng.choice(currencies)
            start = as_of - timedelta(days=30 * ((i - 1) // n_contracts) + rng.randrange(28))
            number = f"BENCH-{year}-{i:06d}"
            inv.write(_copy_text((i, entity_id, rng.randint(1, max(1, n_contracts // 2)), contract, FLOOR_RUN_ID,
                                  start,
                                  start + timedelta(days=30), number, year, i, as_of, due, currency, net, tax,
                                  net + tax, net + tax, "issued", None, now, now)))
            if i <= events:
                payload = {"invoice_id": i, "number": number, "entity": "BENCH", "contract_id": contract,
                           "currency": currency, "total": str(net + tax)}
                ev.write(_copy_text((i, "invoice.issued", json.dumps(payload), entity_id, FLOOR_RUN_ID, 0, now,
                                     None)))
        for i in range(invoices + 1, events + 1):  # run started/completed and any other events
            ev.write(_copy_text((i, "billing_run.completed", json.dumps({"run_id": FLOOR_RUN_ID, "number": 1}),
                                 entity_id, FLOOR_RUN_ID, 0, now, None)))
    with open(files["invoice_lines"], "w") as out:
        position, previous = 0, None
        for j in range(lines):
            invoice_id = j * invoices // lines + 1 if invoices else 1
            position = position + 1 if invoice_id == previous else 1
            previous = invoice_id
            quantity = rng.choice(QUANTITIES)
            price = Decimal(rng.randrange(100, 1_000_000)).scaleb(-2)
            out.write(_copy_text((j + 1, invoice_id, position, f"{rng.choice(PLANS)} (monthly)", quantity, price,
                                  weighted(rng, VAT_RATES), (quantity * price).quantize(Decimal("0.01")))))
    return files


FLOOR_VARIANTS = {
    # name: (how the target tables are made, label); the first is the floor, the others references
    "real": (None, "the real tables (indexes, CHECKs and foreign keys): the floor"),
    "indexed": ("LIKE {table} INCLUDING ALL", "scratch tables LIKE ... INCLUDING ALL (the real indexes and CHECKs, no FKs)"),
    "bare": ("LIKE {table} INCLUDING DEFAULTS", "scratch tables LIKE ... INCLUDING DEFAULTS (no indexes, no constraints)"),
}


def _floor_billing_run(app, entity_id: int, as_of: date) -> None:
    """The billing_runs row the floor's rows point at, made through the model so its defaults apply."""
    from app.extensions import db
    from app.models import BillingRun

    with app.app_context():
        db.session.add(BillingRun(id=FLOOR_RUN_ID, legal_entity_id=entity_id, number=1, as_of=as_of,
                                  period_label=f"{as_of:%Y-%m}", status="completed", trigger="cli",
                                  actor_type="system", actor_label="bench floor"))
        db.session.commit()
        db.session.remove()


def measure_floor(app, bench: BenchDatabase, files: dict[str, Path], variant: str, entity_id: int, as_of: date,
                  repeats: int) -> list[float]:
    """Seconds to COPY the three files (one transaction, COMMIT included); the best of `repeats` counts."""
    like = FLOOR_VARIANTS[variant][0]
    targets = {table: (f"floor_{variant}_{table}" if like else table) for table in FLOOR_COLUMNS}
    times = []
    with psycopg.connect(bench.conninfo) as conn:
        if like:
            for table, target in targets.items():
                conn.execute(f"DROP TABLE IF EXISTS {target}")
                conn.execute(f"CREATE TABLE {target} ({like.format(table=table)})")
        else:  # the real tables: empty them, and give the rows the billing run their foreign key needs
            conn.execute("TRUNCATE " + ", ".join(RUN_TABLES) + " RESTART IDENTITY CASCADE")
            conn.commit()
            _floor_billing_run(app, entity_id, as_of)
        conn.commit()
        for _ in range(repeats):
            # CASCADE: later migrations add tables that reference invoices (all empty here)
            conn.execute("TRUNCATE " + ", ".join(targets.values()) + ("" if like else " CASCADE"))
            conn.commit()
            conn.autocommit = True
            conn.execute("CHECKPOINT")
            conn.autocommit = False
            started = time.perf_counter()
            with conn.cursor() as cur:
                for table, columns in FLOOR_COLUMNS.items():
                    with open(files[table], "rb") as source, \
                            cur.copy(f"COPY {targets[table]} ({', '.join(columns)}) FROM STDIN") as copy:
                        while block := source.read(1 << 20):
                            copy.write(block)
            conn.commit()
            times.append(time.perf_counter() - started)
        if like:
            for target in targets.values():
                conn.execute(f"DROP TABLE {target}")
        else:
            conn.execute("TRUNCATE " + ", ".join(RUN_TABLES) + " RESTART IDENTITY CASCADE")
        conn.commit()
    return times


# ------------------------------------------------------------------ main
def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, required=True, help="how many contracts to seed (N)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the fanned-out run (default 2)")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL on the server to use; a fresh arbill_bench_* database is made there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9",
                        help="Redis for the jobs; its db is FLUSHED (default redis://127.0.0.1:6379/9)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="the billing agent's chunk_size (10-10000; default: the agent's, 2000)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15), help="the run's as-of date")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the generated data")
    parser.add_argument("--modes", default="inline,fanned,floor", help="which measurements (default: all three)")
    parser.add_argument("--floor-repeats", type=int, default=3, help="COPY floor repetitions; the best counts")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a fanned-out run after this (s)")
    parser.add_argument("--profile", metavar="FILE", help="run the inline measurement under cProfile, stats to FILE")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database (debugging)")
    args = parser.parse_args(argv)

    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if unknown := modes - {"inline", "fanned", "floor"}:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    if args.contracts < 1:
        parser.error("--contracts must be at least 1")
    if args.chunk_size is not None and not 10 <= args.chunk_size <= 10000:
        parser.error("--chunk-size must be within 10-10000 (the agent's limits)")
    if "fanned" in modes and args.workers < 1:
        parser.error("--workers must be at least 1")
    redis_db = Redis.from_url(args.redis).connection_pool.connection_kwargs.get("db", 0)
    if int(redis_db) == 0:
        parser.error("--redis points at db 0, which the benchmark would flush: use another db index (e.g. /9)")

    signal.signal(signal.SIGTERM, _terminate)
    bench = BenchDatabase.new(args.db, "arbill_bench")
    rng = random.Random(args.seed)
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_bench_"))
    created = False
    keep_logs = True  # the workers' logs stay in work_dir unless the benchmark ends cleanly
    outcomes: dict[str, RunOutcome] = {}
    floor: dict[str, list[float]] = {}
    try:
        bench.create()
        created = True
        say(f"Arbill billing-run benchmark: N={args.contracts:,} contracts, as of {args.as_of}, "
            f"database {bench.name}, Redis {args.redis}")
        from flask_migrate import upgrade

        from app import create_app

        app = create_app(make_config(bench.sqlalchemy_url, args.redis))
        started = time.perf_counter()
        migration_log = io.StringIO()
        try:  # alembic logs every migration to stderr: keep it unless something goes wrong
            with app.app_context(), contextlib.redirect_stderr(migration_log):
                upgrade()
        except Exception:
            sys.stderr.write(migration_log.getvalue())
            raise
        say(f"migrated in {time.perf_counter() - started:.1f} s; load average {_loadavg()}, {os.cpu_count()} CPUs")
        chunk_size = set_chunk_size(app, args.chunk_size)
        seeded = seed(app, bench, args.contracts, args.as_of, rng)
        say(f"seeded in {seeded.seconds:.1f} s (not measured): {seeded.customers:,} customers, "
            f"{seeded.contracts:,} contracts, {seeded.lines:,} contract lines; "
            f"{seeded.expected_invoices:,} due periods "
            f"({seeded.expected_invoices / seeded.contracts:.2f} per contract)")
        say("  frequencies: " + ", ".join(f"{k} {v:,}" for k, v in sorted(seeded.by_frequency.items())))
        say("  currencies:  " + ", ".join(f"{k} {v:,}" for k, v in sorted(seeded.by_currency.items())))
        say(f"  chunk size {chunk_size} -> {-(-seeded.contracts // chunk_size)} chunks; "
            f"peak RSS of this process so far {peak_rss_mb():.0f} MB")

        if "inline" in modes:
            say("\n[a] inline: start_billing_run(enqueue=False) + execute_run(inline=True) in this process"
                + (" -- UNDER cProfile, not a benchmark figure" if args.profile else ""))
            outcomes["inline"] = measure_inline(app, bench, seeded, args.as_of, args.profile)
            print_outcome(outcomes["inline"], seeded)
            say(f"  peak RSS of this process {outcomes['inline'].rss_self_mb:.0f} MB")
        if "fanned" in modes:
            say(f"\n[b] fanned out: {args.workers} x `python worker.py billing`, start_billing_run(enqueue=True)")
            outcomes["fanned"] = measure_fanned(app, bench, seeded, args.as_of, args.workers, args.redis,
                                                work_dir, args.timeout)
            o = outcomes["fanned"]
            print_outcome(o, seeded)
            say(f"  peak RSS of a worker process {o.rss_workers['peak_single_mb']:.0f} MB "
                f"(per worker incl. its work horses: {o.rss_workers['by_worker_mb']} MB); "
                f"all worker processes together at most {o.rss_workers['peak_total_mb']:.0f} MB")
            if "inline" in outcomes and outcomes["inline"].totals != o.totals:
                o.problems.append("totals differ from the inline run's")
                say(f"  PROBLEM: totals differ from the inline run's ({outcomes['inline'].totals})")
        if "floor" in modes:
            ref = outcomes.get("inline") or outcomes.get("fanned")
            counts = ((ref.invoices, ref.invoice_lines, ref.events) if ref else
                      (seeded.expected_invoices, seeded.expected_invoice_lines, seeded.expected_invoices + 2))
            say(f"\n[c] floor: COPY {counts[0]:,} invoices, {counts[1]:,} invoice lines, {counts[2]:,} events "
                "(the run's row counts) with psycopg cursor.copy(), rows encoded beforehand, one transaction")
            files = generate_floor_rows(work_dir, *counts, seeded.contracts, seeded.entity_id, args.as_of, rng)
            for variant, (_like, label) in FLOOR_VARIANTS.items():
                floor[variant] = measure_floor(app, bench, files, variant, seeded.entity_id, args.as_of,
                                               args.floor_repeats)
                say(f"  {variant:8} {min(floor[variant]):6.2f} s (best of {', '.join(f'{t:.2f}' for t in floor[variant])})"
                    f"  into {label}")
            for path in files.values():
                path.unlink()

        # -------------------------------------------------------------- summary
        say("\n== SUMMARY ==")
        say(f"N (contracts)                       {seeded.contracts:,}")
        say(f"chunk size / workers                {chunk_size} / {args.workers}")
        say(f"due periods seeded                  {seeded.expected_invoices:,}")
        bare = min(floor["bare"]) if floor else None
        real = min(floor["real"]) if floor else None
        for key, label in (("inline", "inline"), ("fanned", f"fanned out over {args.workers} workers")):
            o = outcomes.get(key)
            if o is None:
                continue
            ratio = (f", {o.seconds / real:.1f}x the floor ({o.seconds / bare:.1f}x COPY into tables without indexes)"
                     if real else "")
            say(f"{label + ':':35} {o.seconds:.2f} s, {seeded.contracts / o.seconds:,.0f} contracts/s, "
                f"{o.invoices:,} invoices{ratio}; correctness {'OK' if not o.problems else 'PROBLEMS'}")
        inline = outcomes.get("inline")
        if inline is not None and "PostgreSQL backend" in inline.cpu:
            # The inline run alternates between Python and PostgreSQL, so on an idle machine its wall time is
            # close to the sum of the two CPU times: a figure that other work on the machine hardly moves.
            cpu = inline.cpu["this process"] + inline.cpu["PostgreSQL backend"]
            say(f"inline, CPU time (load-independent): {cpu:.2f} s = {inline.cpu['this process']:.2f} s Python + "
                f"{inline.cpu['PostgreSQL backend']:.2f} s PostgreSQL, {seeded.contracts / cpu:,.0f} contracts per "
                f"CPU-second" + (f", {cpu / real:.1f}x the floor" if real else ""))
        if real:
            say(f"floor (COPY into the real tables):  {real:.2f} s (indexes, CHECKs, foreign keys)")
            say(f"COPY, scratch tables with indexes:  {min(floor['indexed']):.2f} s (indexes, CHECKs, no foreign keys)")
            say(f"COPY, tables without indexes:       {bare:.2f} s (no indexes, no constraints)")
        if "inline" in outcomes:
            say(f"peak RSS, this process (inline):    {outcomes['inline'].rss_self_mb:.0f} MB")
        if "fanned" in outcomes:
            w = outcomes["fanned"].rss_workers
            say(f"peak RSS, one worker process:       {w['peak_single_mb']:.0f} MB "
                f"(sum of all worker processes {w['peak_total_mb']:.0f} MB)")
        say(f"peak RSS, this process (overall):   {peak_rss_mb():.0f} MB")
        say(f"load average now:                   {_loadavg()} ({os.cpu_count()} CPUs; other work skews the figures)")
        problems = [p for o in outcomes.values() for p in o.problems]
        say("correctness:                        " + ("OK" if not problems else "; ".join(problems)))
        keep_logs = bool(problems)
        return 0
    except KeyboardInterrupt as interrupt:
        say(f"\ninterrupted ({interrupt or 'Ctrl-C'}): cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        clean_up(locals().get("app"), bench, created, args.keep_db, args.redis, say)
        if keep_logs:
            for leftover in work_dir.glob("*.copy"):
                leftover.unlink()
            if any(work_dir.iterdir()):
                say(f"worker logs kept in {work_dir}")
            else:
                work_dir.rmdir()
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
