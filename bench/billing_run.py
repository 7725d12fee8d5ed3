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
   floor    PostgreSQL COPYing the invoice, invoice_line and event rows the last run wrote
            into the real tables (their indexes, CHECKs and foreign keys: what storing those
            rows costs any engine on this schema); the rows are the run's own, dumped with
            COPY TO beforehand, untimed (bench/billing_floor.py). Two references are printed too: the same COPY into scratch
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

import os
import random
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg
from redis import Redis

from benchlib import BenchDatabase, SeededState, clean_up, create_app_on
from benchlib.options import (add_keep_db, add_redis, add_smoke, apply_smoke, check_redis_flushable,
                              ignore_signals, interrupt_on_sigterm, parser_for, require_postgres)
from benchlib.sampling import (MachineLoad, backend_cpu, backend_cpu_delta, descendants, loadavg, mb, peak_rss_mb,
                               self_cpu)
from benchlib.timing import say
from benchlib.workers import Workers
from billing_checks import RunOutcome, inspect_run, print_outcome, wait_for_run
from billing_floor import FLOOR_VARIANTS, dump_run_rows, measure_floor
from billing_seed import seed, set_chunk_size

# ------------------------------------------------------------------ inline
def measure_inline(app, bench, state: SeededState, seeded, as_of, profile_path: str | None) -> RunOutcome:
    from app.audit import Actor
    from app.billing.runs import execute_run, start_billing_run
    from app.extensions import db
    from app.models import LegalEntity

    state.reset(bench.conninfo)
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
def measure_fanned(app, bench, state: SeededState, seeded, as_of, workers_count, redis_url, log_dir,
                   timeout) -> RunOutcome:
    from app.audit import Actor
    from app.billing.runs import start_billing_run
    from app.extensions import db
    from app.models import LegalEntity

    state.reset(bench.conninfo)
    Redis.from_url(redis_url).flushdb()
    workers = Workers("billing", workers_count, bench.sqlalchemy_url, redis_url, log_dir)
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
            wait_for_run(poll, run_id, timeout, log_dir, tick=workers.sample)
            seconds = time.perf_counter() - started
        workers.sample()
        time.sleep(0.2)  # let the last work horse be reaped, so its CPU is counted
        user, system = workers.cpu_seconds()
        cpu_workers = (user - cpu_idle[0], system - cpu_idle[1])
        busy, cpu_self = machine.busy_since(), self_cpu() - cpu_before
        mine = {os.getpid(), *backend_cpu(bench.name)}
        for handle in workers.handles:
            mine.update((handle.pid, *descendants(handle.pid)))
        others = [o for o in machine.top_others(mine, limit=6) if bench.name not in o[0]][:3]
    finally:
        workers.stop()
    outcome = inspect_run(bench, "fanned", seconds, run_id, seeded)
    outcome.rss_self_mb = peak_rss_mb()
    outcome.rss_workers = {"peak_single_mb": mb(workers.peak_single), "peak_total_mb": mb(workers.peak_total),
                           "by_worker_mb": [round(mb(b), 1) for b in workers.peak_by_worker],
                           "per_worker": workers.rss_per_worker()}
    outcome.cpu["workers and work horses"] = sum(cpu_workers)
    outcome.cpu["... of which system (kernel)"] = cpu_workers[1]
    outcome.cpu["this process (polling)"] = cpu_self
    outcome.cpu["machine busy"] = busy  # includes PostgreSQL and anything else running
    outcome.others = others
    return outcome



# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--contracts", type=int, help="how many contracts to seed (N; required unless --smoke)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the fanned-out run (default 2)")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL on the server to use; a fresh arbill_bench_* database is made there")
    add_redis(parser, "redis://127.0.0.1:6379/9")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="the billing agent's chunk_size (10-10000; default: the agent's, 2000)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15), help="the run's as-of date")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the generated data")
    parser.add_argument("--modes", default="inline,fanned,floor", help="which measurements (default: all three)")
    parser.add_argument("--floor-repeats", type=int, default=3, help="COPY floor repetitions; the best counts")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a fanned-out run after this (s)")
    parser.add_argument("--profile", metavar="FILE", help="run the inline measurement under cProfile, stats to FILE")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, contracts=200, chunk_size=50, floor_repeats=1, timeout=120)
    if args.contracts is None:
        parser.error("--contracts is required (or --smoke)")
    require_postgres(parser, args.db, "the bench seeds and measures with PostgreSQL's COPY and backend CPU")

    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if unknown := modes - {"inline", "fanned", "floor"}:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    if args.contracts < 1:
        parser.error("--contracts must be at least 1")
    if args.chunk_size is not None and not 10 <= args.chunk_size <= 10000:
        parser.error("--chunk-size must be within 10-10000 (the agent's limits)")
    if "fanned" in modes and args.workers < 1:
        parser.error("--workers must be at least 1")
    check_redis_flushable(parser, args.redis)

    interrupt_on_sigterm()
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
        started = time.perf_counter()
        app = create_app_on(bench, args.redis)
        say(f"migrated in {time.perf_counter() - started:.1f} s; load average {loadavg()}, {os.cpu_count()} CPUs")
        chunk_size = set_chunk_size(app, args.chunk_size)
        seeded = seed(app, bench, args.contracts, args.as_of, rng)
        state = SeededState.snapshot(bench.conninfo)
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
            outcomes["inline"] = measure_inline(app, bench, state, seeded, args.as_of, args.profile)
            print_outcome(outcomes["inline"], seeded)
            say(f"  peak RSS of this process {outcomes['inline'].rss_self_mb:.0f} MB")
        if "fanned" in modes:
            say(f"\n[b] fanned out: {args.workers} x `python worker.py billing`, start_billing_run(enqueue=True)")
            outcomes["fanned"] = measure_fanned(app, bench, state, seeded, args.as_of, args.workers, args.redis,
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
            if not outcomes:
                say("\n[c] floor: no run measured, so an untimed inline run writes the rows first")
                outcomes["floor rows"] = measure_inline(app, bench, state, seeded, args.as_of, None)  # checked too
            files, counts = dump_run_rows(bench, work_dir)
            say(f"\n[c] floor: COPY {counts['invoices']:,} invoices, {counts['invoice_lines']:,} invoice lines, "
                f"{counts['events']:,} events (the last run's own rows, dumped with COPY TO beforehand) with psycopg "
                "cursor.copy(), one transaction")
            for variant, (_like, label) in FLOOR_VARIANTS.items():
                floor[variant] = measure_floor(bench, state, files, variant, args.floor_repeats)
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
            say(f"RSS per worker, first/peak/last:    {w['per_worker']}")
        say(f"peak RSS, this process (overall):   {peak_rss_mb():.0f} MB")
        say(f"load average now:                   {loadavg()} ({os.cpu_count()} CPUs; other work skews the figures)")
        problems = [p for o in outcomes.values() for p in o.problems]
        say("correctness:                        " + ("OK" if not problems else "; ".join(problems)))
        keep_logs = bool(problems)
        return 1 if problems else 0  # a bench whose own checks fail has no figures to give
    except KeyboardInterrupt as interrupt:
        say(f"\ninterrupted ({interrupt or 'Ctrl-C'}): cleaning up")
        return 130
    finally:
        ignore_signals()
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
