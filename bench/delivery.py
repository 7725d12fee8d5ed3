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

import argparse
import contextlib
import ctypes
import io
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from redis import Redis  # noqa: E402

from benchlib import BenchDatabase, clean_up, make_config  # noqa: E402

AS_OF = date(2026, 11, 26)  # contracts start 2026-11-01, monthly: exactly one due period each
RENDER_SAMPLE = 20


def say(message: str = "") -> None:
    print(message, flush=True)


def mb(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# ------------------------------------------------------------------ workers
def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the bench process dies without cleaning up."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Workers:
    def __init__(self, count: int, bench: BenchDatabase, redis_url: str, mail_port: int, log_dir: Path):
        self.count, self.bench, self.redis_url, self.mail_port, self.log_dir = count, bench, redis_url, mail_port, log_dir
        self.procs: list[subprocess.Popen] = []
        self.handles: list[psutil.Process] = []
        self.tag = uuid.uuid4().hex[:6]
        self.peak_single = 0  # bytes: largest RSS of any one worker process (main or work horse)
        self.peak_total = 0  # bytes: largest sum over all worker processes at one sample
        self.peak_main = 0  # bytes: largest RSS of a worker main process
        self.peak_horse = 0  # bytes: largest RSS of a work horse seen
        self.peak_processes = 0  # worker processes alive at the sample with the largest sum
        self.horses_seen: set[int] = set()
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def start_sampling(self, interval: float = 0.1) -> None:
        """Sample RSS in a thread (also while relay_outbox() runs), until stop_sampling()."""
        def loop():
            while not self._sampling.wait(interval):
                self.sample()

        self._sampling.clear()
        self._sampler = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None

    def start(self, timeout: float = 90.0) -> float:
        from rq import Queue, Worker

        env = {k: v for k, v in os.environ.items() if k not in ("MAIL_USERNAME", "MAIL_PASSWORD")}
        env.update({"DATABASE_URL": self.bench.sqlalchemy_url, "REDIS_URL": self.redis_url,
                    "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(self.mail_port), "MAIL_USE_TLS": "false",
                    "MAIL_USE_SSL": "false", "FLASK_APP": "wsgi.py", "ARBILL_ENV": "development",
                    "PYTHONUNBUFFERED": "1"})
        started = time.perf_counter()
        for i in range(self.count):
            log = open(self.log_dir / f"worker-{i}.log", "wb")
            proc = subprocess.Popen([sys.executable, "worker.py", "delivery", "--name", f"bench-delivery-{self.tag}-{i}"],
                                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
            log.close()
            self.procs.append(proc)
            self.handles.append(psutil.Process(proc.pid))
        redis = Redis.from_url(self.redis_url)
        queue = Queue("delivery", connection=redis)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            registered = Worker.count(connection=redis, queue=queue)
            if registered >= self.count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {registered} of {self.count} workers registered within {timeout:.0f} s")
            time.sleep(0.05)
        redis.close()
        self.sample()
        return time.perf_counter() - started

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise RuntimeError(f"worker {i} exited with {proc.returncode}: see {self.log_dir}/worker-{i}.log")

    def sample(self) -> None:
        total, alive = 0, 0
        for handle in self.handles:
            try:
                children = handle.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for p in (handle, *children):
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                alive += 1
                self.peak_single = max(self.peak_single, rss)
                if p is handle:
                    self.peak_main = max(self.peak_main, rss)
                else:
                    self.peak_horse = max(self.peak_horse, rss)
                    self.horses_seen.add(p.pid)
        if total > self.peak_total:
            self.peak_total, self.peak_processes = total, alive

    def cpu_seconds(self) -> float:
        """CPU of the workers and of the work horses they have reaped (call before stop())."""
        total = 0.0
        for handle in self.handles:
            try:
                t = handle.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def rq_stats(self) -> list[tuple[str, int, int, float]]:
        """(name, successful jobs, failed jobs, total working time s) per worker, as RQ recorded them."""
        from rq import Worker

        redis = Redis.from_url(self.redis_url)
        try:
            found = [w for w in Worker.all(connection=redis) if w.name.startswith(f"bench-delivery-{self.tag}-")]
            return sorted((w.name, w.successful_job_count, w.failed_job_count, w.total_working_time) for w in found)
        finally:
            redis.close()

    def stop(self, timeout: float = 30.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)  # warm shutdown: finish the current job, then stop
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: the worker and its work horse
                proc.wait()
        self.procs = []


class MachineLoad:
    """CPU-seconds the whole machine was busy during the measurement."""

    def __init__(self) -> None:
        self.start = psutil.cpu_times()

    @staticmethod
    def _busy(t) -> float:
        return (sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
                - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))

    def busy_since(self) -> float:
        return self._busy(psutil.cpu_times()) - self._busy(self.start)


def self_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


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
    cpu_idle = workers.cpu_seconds()  # their start-up
    workers.start_sampling()
    with app.app_context(), psycopg.connect(bench.conninfo, autocommit=True) as poll:
        machine, cpu_before = MachineLoad(), self_cpu()
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
    outcome.worker_cpu = workers.cpu_seconds() - cpu_idle
    outcome.rq = workers.rq_stats()
    return outcome


# ------------------------------------------------------------------ checks
@dataclass
class Checks:
    messages: int = 0
    unique_to: int = 0
    one_pdf: int = 0
    pdf_bytes: list = field(default_factory=list)
    deliveries: dict = field(default_factory=dict)
    documents: int = 0
    problems: list = field(default_factory=list)


def check(bench: BenchDatabase, mailbox: Path, count: int) -> Checks:
    checks = Checks()
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        expected_to = {row[0] for row in conn.execute("SELECT c.email FROM invoices i JOIN customers c "
                                                       "ON c.id = i.customer_id WHERE i.status = 'issued'")}
        numbers = {row[0] for row in conn.execute("SELECT number FROM invoices WHERE status = 'issued'")}
        checks.deliveries = dict(conn.execute("SELECT kind || ':' || status, count(*) FROM invoice_deliveries "
                                              "GROUP BY 1").fetchall())
        checks.documents = conn.execute("SELECT count(*) FROM invoice_documents").fetchone()[0]
        per_invoice = conn.execute("SELECT count(*) FROM (SELECT invoice_id FROM invoice_deliveries "
                                   "GROUP BY 1 HAVING count(*) > 1) d").fetchone()[0]
    parser = BytesParser(policy=policy.default)
    recipients, filenames = [], []
    for path in sorted(mailbox.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        checks.messages += 1
        recipients.append(str(message["To"]))
        attachments = list(message.iter_attachments())
        pdfs = [a for a in attachments if a.get_content_type() == "application/pdf"]
        if len(attachments) == 1 and len(pdfs) == 1:
            content = pdfs[0].get_content()
            if content.startswith(b"%PDF"):
                checks.one_pdf += 1
                checks.pdf_bytes.append(len(content))
            filenames.append(pdfs[0].get_filename())
    checks.unique_to = len(set(recipients))
    if checks.messages != count:
        checks.problems.append(f"{checks.messages} messages, expected {count}")
    if checks.unique_to != count:
        checks.problems.append(f"{checks.unique_to} unique To addresses, expected {count}")
    if set(recipients) != expected_to:
        checks.problems.append(f"To addresses differ from the invoiced customers' "
                               f"({len(set(recipients) - expected_to)} unexpected, {len(expected_to - set(recipients))} missing)")
    if checks.one_pdf != checks.messages:
        checks.problems.append(f"{checks.messages - checks.one_pdf} messages without exactly one PDF attachment")
    if sorted(filenames) != sorted(f"Invoice-{n}.pdf" for n in numbers):
        checks.problems.append("attachment file names are not exactly one Invoice-<number>.pdf per invoice")
    if checks.deliveries != {"auto:sent": count}:
        checks.problems.append(f"invoice_deliveries {checks.deliveries}, expected {{'auto:sent': {count}}}")
    if per_invoice:
        checks.problems.append(f"{per_invoice} invoices with more than one delivery row")
    if checks.documents != count:
        checks.problems.append(f"{checks.documents} stored invoice documents, expected {count}")
    return checks


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
def _terminate(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, required=True, help="invoices to bill and deliver (N)")
    parser.add_argument("--workers", type=int, default=2, help="`python worker.py delivery` processes (default 2)")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL on the server to use; a fresh arbill_bench_delivery_* database is made there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11",
                        help="Redis for the jobs; its db is FLUSHED (default redis://127.0.0.1:6379/11)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on the delivery after this (s)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database (debugging)")
    args = parser.parse_args(argv)
    if args.invoices < 1:
        parser.error("--invoices must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    redis_db = Redis.from_url(args.redis).connection_pool.connection_kwargs.get("db", 0)
    if int(redis_db) == 0:
        parser.error("--redis points at db 0, which the benchmark would flush: use another db index (e.g. /11)")

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _terminate)
    bench = BenchDatabase.new(args.db, "arbill_bench_delivery")
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_bench_delivery_"))
    mailbox = work_dir / "mailbox"
    mail_port = free_port()
    created, sink, workers, succeeded = False, None, None, False
    try:
        bench.create()
        created = True
        say(f"Arbill delivery benchmark: N={args.invoices:,} invoices, {args.workers} workers, database {bench.name}, "
            f"Redis {args.redis}; {os.cpu_count()} CPUs, load average {_loadavg()}")
        from flask_migrate import upgrade

        from app import create_app
        from app.mailsink import start_sink

        app = create_app(make_config(bench.sqlalchemy_url, args.redis, MAIL_SERVER="127.0.0.1", MAIL_PORT=mail_port))
        started = time.perf_counter()
        migration_log = io.StringIO()
        try:  # alembic logs every migration to stderr: keep it unless something goes wrong
            with app.app_context(), contextlib.redirect_stderr(migration_log):
                upgrade()
        except Exception:
            sys.stderr.write(migration_log.getvalue())
            raise
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
        workers = Workers(args.workers, bench, args.redis, mail_port, work_dir)
        ready = workers.start()
        say(f"{args.workers} x `python worker.py delivery` registered in {ready:.1f} s (logs in {work_dir}); "
            f"peak RSS idle {mb(workers.peak_main):.0f} MB per worker")

        say("\nmeasuring: relay_outbox() -> N delivery jobs -> render + e-mail, until N .eml files and N deliveries sent")
        load_before = _loadavg()
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
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
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


def report(args, o: Delivery, c: Checks, workers: Workers, wall, cpu, sampled, load_before) -> None:
    n, w = args.invoices, args.workers
    per_second = n / o.seconds
    render_wall, render_cpu = statistics.mean(wall), statistics.mean(cpu)
    rendered_seconds = c.documents * render_wall
    worker_seconds = w * o.seconds
    say("\n== SUMMARY ==")
    say(f"N (invoices)                        {n:,}")
    say(f"workers                             {w} x `python worker.py delivery` (payment collection rule disabled)")
    say(f"wall time, relay_outbox() to the    {o.seconds:.2f} s (relay_outbox() itself {o.relay_seconds:.2f} s: "
        f"{o.relay_dispatched:,} events, {o.relay_jobs:,} jobs;")
    say(f"  last e-mail and delivery 'sent'     first e-mail after {o.first_mail_seconds or 0:.2f} s)")
    say(f"invoices delivered per second       {per_second:.1f} ({per_second / w:.1f} per worker)")
    say(f"worker CPU                          {o.worker_cpu:.1f} s = {1000 * o.worker_cpu / n:.0f} ms per invoice "
        f"(workers + work horses); this process (relay, polling, SMTP sink) {o.self_cpu:.1f} s")
    say(f"machine busy                        {o.machine_busy:.1f} CPU-s of {os.cpu_count() * o.seconds:.1f} available "
        f"({os.cpu_count()} CPUs); load average before {load_before}, after {_loadavg()}")
    for name, ok, failed, working in o.rq:
        say(f"  {name}: {ok} jobs done, {failed} failed, {working:.1f} s in jobs (RQ's total_working_time)")
    say(f"rendering alone (one process, {sampled} of the invoices, build_cii_xml + render_pdf, warm):")
    say(f"                                    wall mean {1000 * render_wall:.0f} ms (median "
        f"{1000 * statistics.median(wall):.0f}), CPU mean {1000 * render_cpu:.0f} ms")
    say(f"share that is rendering             {c.documents:,} documents stored x {1000 * render_wall:.0f} ms = "
        f"{rendered_seconds:.1f} s of the workers' {worker_seconds:.1f} worker-seconds "
        f"({w} x {o.seconds:.2f} s): {100 * rendered_seconds / worker_seconds:.0f} %")
    say(f"                                    by CPU: {c.documents:,} x {1000 * render_cpu:.0f} ms = "
        f"{c.documents * render_cpu:.1f} s of the workers' {o.worker_cpu:.1f} CPU-s: "
        f"{100 * c.documents * render_cpu / o.worker_cpu:.0f} %")
    say(f"                                    (render measured warm in one process; delivery jobs run in the worker "
        f"process, worker.py: worker CPU per invoice {1000 * o.worker_cpu / n:.0f} ms vs {1000 * render_cpu:.0f} ms "
        f"warm render CPU)")
    say(f"checks: messages                    {c.messages:,} (expected {n:,})")
    say(f"        unique To addresses         {c.unique_to:,} (expected {n:,})")
    say(f"        exactly one PDF attachment  {c.one_pdf:,} of {c.messages:,} messages"
        + (f" (mean {statistics.mean(c.pdf_bytes) / 1024:.1f} KiB)" if c.pdf_bytes else ""))
    say(f"        invoice_deliveries          {c.deliveries}; invoice_documents {c.documents:,}")
    say(f"peak RSS, workers                   one process {mb(workers.peak_single):.0f} MB (worker main "
        f"{mb(workers.peak_main):.0f} MB, child {mb(workers.peak_horse):.0f} MB, "
        f"{len(workers.horses_seen):,} children sampled: work horses, RQ's scheduler)")
    say(f"                                    all worker processes together at most {mb(workers.peak_total):.0f} MB "
        f"({workers.peak_processes} processes: worker mains, work horses, RQ's scheduler)")
    say("correctness:                        " + ("OK" if not c.problems else "PROBLEMS: " + "; ".join(c.problems)))


if __name__ == "__main__":
    sys.exit(main())
