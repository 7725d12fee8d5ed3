"""The floor of the billing-run bench: PostgreSQL COPYing the invoice, invoice-line and event rows a billing
run wrote into the real tables (indexes, CHECKs, foreign keys) and, as references, into scratch tables with
the same indexes and CHECKs but no foreign keys, and without any index or constraint.

The rows are the run's own (COPY ... TO files after the run, untimed), so the floor stores exactly what the
engine stored, and a column a migration adds can never make the floor's rows invalid: the earlier
generated rows did, twice (`invoices.kind`, `invoice_lines.vat_category`). One transaction, COMMIT
included; the best of N counts.
"""
from __future__ import annotations

import time
from pathlib import Path

import psycopg

from benchlib import BenchDatabase, SeededState

FLOOR_TABLES = ("invoices", "invoice_lines", "events")  # in this order: lines reference invoices

FLOOR_VARIANTS = {
    # name: (how the target tables are made, label); the first is the floor, the others references
    "real": (None, "the real tables (indexes, CHECKs and foreign keys): the floor"),
    "indexed": ("LIKE {table} INCLUDING ALL", "scratch tables LIKE ... INCLUDING ALL (the real indexes and CHECKs, no FKs)"),
    "bare": ("LIKE {table} INCLUDING DEFAULTS", "scratch tables LIKE ... INCLUDING DEFAULTS (no indexes, no constraints)"),
}


def dump_run_rows(bench: BenchDatabase, directory: Path) -> tuple[dict[str, Path], dict[str, int]]:
    """The rows the last run wrote, in COPY's text format, one file per table (and the billing_runs rows
    they point at); memory stays flat. Returns the files and the row counts."""
    files = {table: directory / f"floor_{table}.copy" for table in ("billing_runs", *FLOOR_TABLES)}
    counts = {}
    with psycopg.connect(bench.conninfo, autocommit=True) as conn, conn.cursor() as cur:
        for table, path in files.items():
            with open(path, "wb") as out, cur.copy(f"COPY {table} TO STDOUT") as copy:
                for block in copy:
                    out.write(block)
            counts[table] = cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return files, counts


def _copy_file(cur, target: str, path: Path) -> None:
    with open(path, "rb") as source, cur.copy(f"COPY {target} FROM STDIN") as copy:
        while block := source.read(1 << 20):
            copy.write(block)


def measure_floor(bench: BenchDatabase, state: SeededState, files: dict[str, Path], variant: str,
                  repeats: int) -> list[float]:
    """Seconds to COPY the three files (one transaction, COMMIT included); the best of `repeats` counts."""
    like = FLOOR_VARIANTS[variant][0]
    targets = {table: (f"floor_{variant}_{table}" if like else table) for table in FLOOR_TABLES}
    times = []
    if not like:  # the real tables: back to the seeded state, with the runs the rows' foreign keys need
        state.reset(bench.conninfo)
        with psycopg.connect(bench.conninfo) as conn, conn.cursor() as cur:
            _copy_file(cur, "billing_runs", files["billing_runs"])
    with psycopg.connect(bench.conninfo) as conn:
        if like:
            for table, target in targets.items():
                conn.execute(f"DROP TABLE IF EXISTS {target}")
                conn.execute(f"CREATE TABLE {target} ({like.format(table=table)})")
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
                for table in FLOOR_TABLES:
                    _copy_file(cur, targets[table], files[table])
            conn.commit()
            times.append(time.perf_counter() - started)
        if like:
            for target in targets.values():
                conn.execute(f"DROP TABLE {target}")
        conn.commit()
    if not like:
        state.reset(bench.conninfo)
    return times
