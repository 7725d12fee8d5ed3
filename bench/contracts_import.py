#!/usr/bin/env python
"""Memory of the contracts CSV import: prints figures, never passes or fails a test.

    python bench/contracts_import.py --rows 200000 --db postgresql://postgres@127.0.0.1:5432/postgres

On a throw-away database `arbill_bench_import_<random>` created on the server of --db (dropped at
the end, also after an error or Ctrl-C), or with --db sqlite (the default) in a temporary directory, it migrates
the schema, adds the legal entity DE01, writes a CSV of --rows rows (two lines per contract, ten
contracts per customer, ~105 bytes a row: 200,000 rows are ~21 MB, the security review's file) and
imports it twice, each time in a fresh child process:

1. `import_contracts()` under tracemalloc, rolled back: the peak of Python's own allocations during
   the import (what the importer keeps, not the interpreter's baseline);
2. `flask contracts import FILE` as an operator runs it, committed: the child's peak RSS
   (ru_maxrss), next to the RSS of `flask entities list` (the same process without the import).

Wall times are printed for orientation only.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, BenchDatabase, clean_up, create_app_on
from benchlib.options import add_db, add_keep_db, add_smoke, apply_smoke, parser_for

HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")

TRACE_CHILD = r"""
import json, sys, time, tracemalloc
sys.path.insert(0, sys.argv[2])
from app import create_app
from app.extensions import db
from app.records.importer import import_contracts
from app.transactions import discarded
from config import TestingConfig
config = TestingConfig()
config.SQLALCHEMY_DATABASE_URI = sys.argv[3]
app = create_app(config)
with app.app_context():
    db.session.execute(db.text("SELECT 1"))
    tracemalloc.start()
    started = time.perf_counter()
    with discarded():  # the import joins it and is undone: the operator's import below starts empty
        with open(sys.argv[1], newline="", encoding="utf-8-sig") as stream:
            result = import_contracts(stream)
        seconds = time.perf_counter() - started
        current, peak = tracemalloc.get_traced_memory()
print(json.dumps({"peak": peak, "seconds": seconds, "contracts": result.contracts, "lines": result.lines}))
"""


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            contract = n // 2
            customer = contract // 10
            out.write(f"DE01,C-{contract:07d},Customer {customer:06d},c{customer:06d}@example.com,"
                      f"{'Hosting plan' if n % 2 == 0 else 'Support hours'},1,49.00,EUR,19,monthly,2026-01-01,,,,,\n")


RSS_WRAPPER = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(done.returncode)")


def child_rss(args: list[str], env: dict) -> tuple[int, float, subprocess.CompletedProcess]:
    """Run `args` in a grandchild; its peak RSS in bytes (ru_maxrss of a wrapper's only child)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    return int(done.stderr.strip().splitlines()[-1]) * 1024, seconds, done


def trace_import(csv_path: Path, url: str, env: dict, rows: int) -> dict:
    trace = subprocess.run([sys.executable, "-c", TRACE_CHILD, str(csv_path), str(ROOT), url], env=env,
                           cwd=ROOT, capture_output=True, text=True)
    if trace.returncode != 0:
        print(trace.stderr[-3000:])
        raise SystemExit("the traced import failed")
    traced = json.loads(trace.stdout.strip().splitlines()[-1])
    print(f"import_contracts() under tracemalloc: peak {traced['peak'] / 2**20:.1f} MiB of Python allocations "
          f"({traced['peak'] / rows:.0f} bytes a row), {traced['seconds']:.1f} s traced, "
          f"{traced['contracts']:,} contracts, {traced['lines']:,} lines (rolled back)")
    return traced


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    add_db(parser, "arbill_bench_import", default="sqlite", sqlite=True)
    parser.add_argument("--no-trace", action="store_true", help="skip the (slow) tracemalloc measurement")
    add_keep_db(parser)
    add_smoke(parser)
    options = parser.parse_args(argv)
    apply_smoke(options, parser, rows=200)

    workdir = Path(tempfile.mkdtemp(prefix="arbill-bench-import-"))
    bench = BenchDatabase.new(options.db, "arbill_bench_import")
    created, app, problems = False, None, []
    try:
        bench.create()
        created = True
        url = bench.sqlalchemy_url
        from app.extensions import db
        from app.records.entities import EntityInput, create_legal_entity

        app = create_app_on(bench, "redis://127.0.0.1:1/0")  # never connected to
        with app.app_context():
            create_legal_entity(EntityInput(code="DE01", name="Bench GmbH", country="DE", currency="EUR"))
            db.session.commit()
            db.engine.dispose()
        csv_path = workdir / "contracts.csv"
        write_csv(csv_path, options.rows)
        size = csv_path.stat().st_size
        print(f"{options.rows:,} rows, {size / 1e6:.1f} MB, database {'SQLite' if bench.kind == 'sqlite' else 'PostgreSQL'}")

        env = {**os.environ, "DATABASE_URL": url, "ARBILL_ENV": "development", "FLASK_APP": "wsgi.py"}
        expected = {"contracts": (options.rows + 1) // 2, "lines": options.rows}
        if not options.no_trace:
            traced = trace_import(csv_path, url, env, options.rows)
            if {k: traced[k] for k in expected} != expected:
                problems.append(f"the traced import read {traced['contracts']} contracts, {traced['lines']} lines; "
                                f"expected {expected}")

        flask = str(Path(sys.executable).parent / "flask")
        baseline, _, _ = child_rss([flask, "entities", "list"], env)
        peak, seconds, done = child_rss([flask, "contracts", "import", str(csv_path)], env)
        if done.returncode != 0:
            print(done.stderr[-3000:])
            raise SystemExit("flask contracts import failed")
        print(f"flask contracts import: peak RSS {peak / 2**20:.0f} MiB (flask entities list: {baseline / 2**20:.0f} MiB), "
              f"{seconds:.1f} s; {done.stdout.strip()}")
        if f"Imported {expected['contracts']} contract(s) with {expected['lines']} line(s)" not in done.stdout:
            problems.append(f"flask contracts import did not report {expected['contracts']} contracts, "
                            f"{expected['lines']} lines")
        print("correctness: " + ("OK" if not problems else "PROBLEMS: " + "; ".join(problems)))
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        clean_up(app, bench, created, options.keep_db)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
