"""What a billing run wrote, checked against what the seed says it must write, and printed."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import psycopg

from benchlib import BenchDatabase
from benchlib.timing import say
from billing_seed import Seeded

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
    """The run's rows: those of the seeded entity (a database may hold a second one, bench/load.py)."""
    entity = {"entity": seeded.entity_id}
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        status, processed, failed, created, queued_at, finished_at = conn.execute(
            "SELECT status, contracts_processed, contracts_failed, invoices_created, queued_at, finished_at "
            "FROM billing_runs WHERE id = %s", (run_id,)).fetchone()
        mine = "legal_entity_id = %(entity)s"
        invoices = conn.execute(f"SELECT count(*) FROM invoices WHERE {mine}", entity).fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                             f"WHERE i.{mine}", entity).fetchone()[0]
        events = conn.execute(f"SELECT count(*) FROM events WHERE {mine}", entity).fetchone()[0]
        issued = conn.execute(f"SELECT count(*) FROM events WHERE type = 'invoice.issued' AND {mine}",
                              entity).fetchone()[0]
        years = conn.execute(
            "SELECT sequence_year, min(sequence_number), max(sequence_number), count(*), "
            f"count(DISTINCT sequence_number) FROM invoices WHERE {mine} GROUP BY sequence_year "
            "ORDER BY sequence_year", entity).fetchall()
        totals = dict(conn.execute(
            f"SELECT currency, sum(total_amount)::text FROM invoices WHERE {mine} GROUP BY currency ORDER BY currency",
            entity).fetchall())
        duplicates = conn.execute(
            f"SELECT count(*) FROM (SELECT contract_id, period_start FROM invoices WHERE {mine} "
            "GROUP BY 1, 2 HAVING count(*) > 1) d", entity).fetchone()[0]
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



def wait_for_run(poll, run_id: int, timeout: float, log_dir, tick=None) -> None:
    """Poll the run (`poll`: an autocommit psycopg connection) every 0.1 s until it is no longer pending or
    running, calling `tick()` each time (sampling); prints progress every 10 s; RuntimeError after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while True:
        status, processed, total = poll.execute(
            "SELECT status, contracts_processed, contracts_total FROM billing_runs WHERE id = %s",
            (run_id,)).fetchone()
        if status not in ("pending", "running"):
            return
        if tick is not None:
            tick()
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {status} after {timeout:.0f} s ({processed}/{total}); "
                               f"see {log_dir}")
        if time.monotonic() - last_report > 10:
            say(f"  ... {status} {processed:,}/{total:,}")
            last_report = time.monotonic()
        time.sleep(0.1)  # polling and sampling cost this process ~1-2 % of a CPU at this rate
