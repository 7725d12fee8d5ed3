"""What the delivery bench checks (one e-mail with one PDF per invoice, deliveries recorded) and its summary."""
from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path

import psycopg

from benchlib import BenchDatabase
from benchlib.sampling import loadavg, mb
from benchlib.timing import say


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



def report(args, o, c: Checks, workers, wall, cpu, sampled, load_before) -> None:
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
        f"({os.cpu_count()} CPUs); load average before {load_before}, after {loadavg()}")
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
