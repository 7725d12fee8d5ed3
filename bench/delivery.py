#!/usr/bin/env python
"""Benchmark of invoice delivery (render + e-mail) by RQ workers: prints figures, never passes or fails a test.

    python bench/delivery.py --invoices N --workers W --db URL [--redis URL]

What it does, on a throw-away database `arbill_bench_delivery_<random>` created on the server of
--db (dropped at the end, also on an error, Ctrl-C or SIGTERM):

1. migrates it (Flask-Migrate `upgrade()`), seeds one legal entity (de_DE, IBAN/BIC) and N
   customers (each with an e-mail address, paying manually) with one contract each (1-3 lines),
   set-based (INSERT ... SELECT FROM generate_series), and bills them inline with one billing run:
   N issued invoices and N `invoice.issued` events in the outbox (untimed). The Payment Collection
   Agent's rule is disabled (`UPDATE orchestration_rules SET enabled = false WHERE agent_key =
   'payment_collection'`) so that only delivery is measured;
2. starts a local SMTP server (`app.mailsink.start_sink`, aiosmtpd, in a thread of this process)
   on a free port, writing .eml files into a temporary directory;
3. flushes the bench Redis db, starts W `python worker.py delivery` processes and waits until
   they are registered; then starts the clock, runs `relay_outbox()` (N delivery jobs) and polls
   until N .eml files exist and `invoice_deliveries` has N rows `sent`; stops the clock, then the
   workers (SIGTERM, wait) and the sink;
4. prints invoices delivered per second (and per worker), the share of the workers' time that is
   rendering (stored `invoice_documents` x the mean of a separate single-process measurement of
   `build_cii_xml` + `render_pdf` on 20 of the invoices), checks (one e-mail per invoice: unique To
   addresses == N and messages == N; one PDF attachment per message) and the peak RSS of the
   workers and their work horses (psutil, sampled while polling).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from redis import Redis

from benchlib import BenchDatabase, clean_up, create_app_on
from benchlib.options import (add_keep_db, add_redis, add_smoke, apply_smoke, check_redis_flushable,
                              ignore_signals, interrupt_on_sigterm, parser_for, require_postgres)
from benchlib.sampling import MachineLoad, loadavg, mb, self_cpu
from benchlib.timing import say
from benchlib.workers import Workers, free_port
from delivery_report import check, report

AS_OF = date(2026, 11, 26)  # contracts start 2026-11-01, monthly: exactly one due period each
RENDER_SAMPLE = 20


# ------------------------------------------------------------------ seeding and billing
def seed_and_bill(app, bench: BenchDatabase, count: int) -> int:
    """One legal entity (through the app), `count` customers and contracts (set-based), billed inline."""
    from app.audit import Actor
    from app.billing.runs import execute_run, start_billing_run
    from app.extensions import db
    from app.models import BillingRunItem, LegalEntity
    from app.records.entities import EntityInput, create_legal_entity

    with app.app_context():
        entity = create_legal_entity(EntityInput(
            code="DE01", name="Arbill Demo GmbH", country="DE", currency="EUR", vat_id="DE136695976",
            timezone="Europe/Berlin", locale="de_DE", address_line1="Friedrichstraße 68", postcode="10117", city="Berlin",
            payment_terms_days=14, finance_email="finance@arbill.example",
            iban="DE89370400440532013000", bic="COBADEFFXXX"), Actor.system("bench"))
        db.session.commit()
        entity_id = entity.id
        db.session.remove()

    with psycopg.connect(bench.conninfo) as conn:
        conn.execute("""
            INSERT INTO customers (id, legal_entity_id, name, email, address_line1, address_line2, postcode, city,
                                   country, vat_id, payment_method, created_at)
            SELECT n, %(entity)s, format('Customer %%s GmbH', lpad(n::text, 6, '0')), format('ap%%s@example.com', n),
                   'Accounts payable', format('Hauptstraße %%s', n), (10000 + n %% 89999)::text, 'Berlin', 'DE',
                   CASE WHEN n %% 3 <> 0 THEN 'DE' || (100000000 + n) END, 'manual', now()
            FROM generate_series(1, %(count)s) AS n""", {"entity": entity_id, "count": count})
        conn.execute("""
            INSERT INTO contracts (id, legal_entity_id, customer_id, reference, status, currency, frequency,
                                   start_date, created_at)
            SELECT n, %(entity)s, n, format('C-%%s', lpad(n::text, 6, '0')), 'active', 'EUR', 'monthly',
                   DATE '2026-11-01', now()
            FROM generate_series(1, %(count)s) AS n""", {"entity": entity_id, "count": count})
        # 1-3 lines per contract (n % 3 + 1), rates 19 / 7 / 0 %, prices 5.00-989.99
        conn.execute("""
            INSERT INTO contract_lines (contract_id, position, description, quantity, unit_price, vat_rate)
            SELECT n, p,
                   (ARRAY['Arbill subscription', 'Additional seats', 'Support plan'])[p],
                   (ARRAY[1, 2, 12, 1.5])[1 + (n + p) %% 4],
                   ((500 + (n * 7919 + p * 104729) %% 98500) / 100.0)::numeric(18, 6),
                   (ARRAY[19, 7, 19, 0])[1 + (n * p) %% 4]
            FROM generate_series(1, %(count)s) AS n, generate_series(1, 3) AS p
            WHERE p <= n %% 3 + 1""", {"count": count})
        for table in ("customers", "contracts"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 1) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE customers, contracts, contract_lines")

    with app.app_context():
        entity = db.session.get(LegalEntity, entity_id)
        result = start_billing_run(entity, AS_OF, "cli", Actor.system("bench"), enqueue=False)
        execute_run(result.run.id, inline=True)
        db.session.expire_all()
        reasons = set(db.session.scalars(db.select(BillingRunItem.reason).where(BillingRunItem.status == "failed")))
        if reasons:
            say(f"note: the billing run refused contract(s): {'; '.join(sorted(r or '?' for r in reasons))}")
        db.session.remove()
    return entity_id


def disable_payment_collection(bench: BenchDatabase) -> int:
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        return conn.execute("UPDATE orchestration_rules SET enabled = false "
                            "WHERE agent_key = 'payment_collection'").rowcount


def count_eml(directory: Path) -> int:
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".eml"))


# ------------------------------------------------------------------ the measurement
@dataclass
class Delivery:
    seconds: float = 0.0
    relay_seconds: float = 0.0
    relay_jobs: int = 0
    relay_dispatched: int = 0
    first_mail_seconds: float | None = None
    worker_cpu: float = 0.0
    self_cpu: float = 0.0
    machine_busy: float = 0.0
    rq: list = field(default_factory=list)


def measure_delivery(app, bench, workers: Workers, mailbox: Path, count: int, timeout: float) -> Delivery:
    from app.agents.events import relay_outbox
    from app.extensions import db

    outcome = Delivery()
    cpu_idle = sum(workers.cpu_seconds())  # their start-up
    workers.start_sampling()
    with app.app_context(), psycopg.connect(bench.conninfo, autocommit=True) as poll:
        machine, cpu_before = MachineLoad(per_process=False), self_cpu()
        started, started_epoch = time.perf_counter(), time.time()
        result = relay_outbox()
        outcome.relay_seconds = time.perf_counter() - started
        outcome.relay_jobs, outcome.relay_dispatched = result.jobs, result.dispatched
        db.session.remove()
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while True:
            mails = count_eml(mailbox)
            if mails >= count:
                sent = poll.execute("SELECT count(*) FROM invoice_deliveries WHERE status = 'sent'").fetchone()[0]
                if sent >= count:
                    break
            if time.monotonic() - last_report > 10:
                statuses = dict(poll.execute("SELECT status, count(*) FROM invoice_deliveries GROUP BY 1").fetchall())
                say(f"  ... {time.perf_counter() - started:5.0f} s: {mails:,} e-mails, deliveries {statuses}")
                last_report = time.monotonic()
            if time.monotonic() > deadline:
                statuses = dict(poll.execute("SELECT status, count(*) FROM invoice_deliveries GROUP BY 1").fetchall())
                raise RuntimeError(f"not done after {timeout:.0f} s: {mails} e-mails, deliveries {statuses}; "
                                   f"worker logs in {workers.log_dir}")
            workers.check_alive()
            time.sleep(0.05)
        outcome.seconds = time.perf_counter() - started
        outcome.self_cpu = self_cpu() - cpu_before
        outcome.machine_busy = machine.busy_since()
    workers.stop_sampling()
    workers.sample()
    # the sink names each file after the time.time() it was received at
    received = sorted(float(p.name.split("-")[0]) for p in mailbox.glob("*.eml"))
    outcome.first_mail_seconds = received[0] - started_epoch if received else None
    time.sleep(0.3)  # let the last work horse be reaped, so that its CPU is counted
    outcome.worker_cpu = sum(workers.cpu_seconds()) - cpu_idle
    outcome.rq = workers.rq_stats()
    return outcome


# ------------------------------------------------------------------ rendering alone
def measure_render(app, sample: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of build_cii_xml + render_pdf (what a delivery job renders) for `sample`
    invoices spread over all, in this one process, warmed up first (as a worker's parent is)."""
    from sqlalchemy.orm import selectinload

    from app.documents.einvoice import build_cii_xml
    from app.documents.pdf import render_pdf
    from app.documents.warm import warm_up
    from app.extensions import db
    from app.models import Invoice

    with app.app_context():
        ids = list(db.session.scalars(db.select(Invoice.id).where(Invoice.status == "issued").order_by(Invoice.id)))
        step = max(1, len(ids) // sample)
        chosen = ids[::step][:sample]
        invoices = list(db.session.scalars(
            db.select(Invoice).where(Invoice.id.in_(chosen)).order_by(Invoice.id)
            .options(selectinload(Invoice.lines), selectinload(Invoice.legal_entity),
                     selectinload(Invoice.customer), selectinload(Invoice.contract))))
        warm_up()
        render_pdf(invoices[0], build_cii_xml(invoices[0]))  # the first render still pays a little more
        wall, cpu = [], []
        for invoice in invoices:
            w0, c0 = time.perf_counter(), time.process_time()
            render_pdf(invoice, build_cii_xml(invoice))
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        db.session.remove()
    return wall, cpu, len(invoices)


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--invoices", type=int, help="invoices to bill and deliver (N; required unless --smoke)")
    parser.add_argument("--workers", type=int, default=2, help="`python worker.py delivery` processes (default 2)")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL on the server to use; a fresh arbill_bench_delivery_* database is made there")
    add_redis(parser, "redis://127.0.0.1:6379/11")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on the delivery after this (s)")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, invoices=6, workers=1, timeout=120)
    if args.invoices is None:
        parser.error("--invoices is required (or --smoke)")
    if args.invoices < 1:
        parser.error("--invoices must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    require_postgres(parser, args.db, "the bench seeds set-based with generate_series and polls with psycopg")
    check_redis_flushable(parser, args.redis)

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    interrupt_on_sigterm()
    bench = BenchDatabase.new(args.db, "arbill_bench_delivery")
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_bench_delivery_"))
    mailbox = work_dir / "mailbox"
    mail_port = free_port()
    created, sink, workers, succeeded = False, None, None, False
    try:
        bench.create()
        created = True
        say(f"Arbill delivery benchmark: N={args.invoices:,} invoices, {args.workers} workers, database {bench.name}, "
            f"Redis {args.redis}; {os.cpu_count()} CPUs, load average {loadavg()}")
        from app.mailsink import start_sink

        started = time.perf_counter()
        app = create_app_on(bench, args.redis, MAIL_SERVER="127.0.0.1", MAIL_PORT=mail_port)
        say(f"migrated in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        seed_and_bill(app, bench, args.invoices)
        with psycopg.connect(bench.conninfo, autocommit=True) as conn:
            issued = conn.execute("SELECT count(*) FROM invoices WHERE status = 'issued'").fetchone()[0]
            events = conn.execute("SELECT count(*) FROM events WHERE type = 'invoice.issued' "
                                  "AND dispatched_at IS NULL").fetchone()[0]
            lines = conn.execute("SELECT count(*) FROM invoice_lines").fetchone()[0]
        say(f"seeded and billed in {time.perf_counter() - started:.1f} s (not measured): {issued:,} issued invoices "
            f"({lines:,} lines), {events:,} invoice.issued events in the outbox")
        if issued != args.invoices or events != args.invoices:
            raise RuntimeError(f"expected {args.invoices} issued invoices and invoice.issued events, "
                               f"got {issued} and {events}")
        disabled = disable_payment_collection(bench)
        say(f"payment collection NOT measured: disabled {disabled} orchestration rule(s) "
            "(UPDATE orchestration_rules SET enabled=false WHERE agent_key='payment_collection'); "
            "invoice.issued -> Invoice Delivery Agent only")

        sink = start_sink(mailbox, "127.0.0.1", mail_port)
        say(f"SMTP sink (aiosmtpd, a thread of this process) on 127.0.0.1:{mail_port}, writing to {mailbox}")
        Redis.from_url(args.redis).flushdb()
        workers = Workers("delivery", args.workers, bench.sqlalchemy_url, args.redis, work_dir,
                          env={"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mail_port), "MAIL_USE_TLS": "false",
                               "MAIL_USE_SSL": "false"})
        ready = workers.start()
        say(f"{args.workers} x `python worker.py delivery` registered in {ready:.1f} s (logs in {work_dir}); "
            f"peak RSS idle {mb(workers.peak_main):.0f} MB per worker")

        say("\nmeasuring: relay_outbox() -> N delivery jobs -> render + e-mail, until N .eml files and N deliveries sent")
        load_before = loadavg()
        outcome = measure_delivery(app, bench, workers, mailbox, args.invoices, args.timeout)
        workers.stop()
        sink.stop()
        sink = None
        say(f"done in {outcome.seconds:.2f} s; workers stopped, sink stopped")

        checks = check(bench, mailbox, args.invoices)
        wall, cpu, sampled = measure_render(app, RENDER_SAMPLE)
        report(args, outcome, checks, workers, wall, cpu, sampled, load_before)
        succeeded = True
        return 0 if not checks.problems else 1
    except KeyboardInterrupt as interrupt:
        say(f"\ninterrupted ({interrupt or 'Ctrl-C'}): cleaning up")
        return 130
    finally:
        ignore_signals()
        if workers is not None:
            try:
                workers.stop_sampling()
                workers.stop()
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                say(f"could not stop the workers: {error}")
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.stop()
        clean_up(locals().get("app"), bench, created, args.keep_db, args.redis, say)
        if succeeded:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            say(f"kept {work_dir} (worker logs, received mail) for a look")




if __name__ == "__main__":
    sys.exit(main())
