#!/usr/bin/env python
"""Benchmark of the invoice document rendering: prints figures, never passes or fails a test.

    python bench/render.py --invoices N [--redis URL] [--profile FILE]

What it does, on a throw-away SQLite database in a temporary directory (deleted at the end):

1. migrates it (Flask-Migrate `upgrade()`), seeds one legal entity (de_DE, with IBAN and SEPA
   creditor id) and N contracts of 1-3 lines (rates 19, 7, 19.45 and 0 %, a quarter of the
   customers paying by SEPA direct debit), and bills them with one inline billing run: N issued
   invoices;
2. loads the invoices with their lines, entity, customer and contract (untimed), warms up
   (`warm_up()`, a few renders, then worker.py's `settle_heap()`: gc.freeze() and its GC
   thresholds), then for each invoice, in this one process, what the document service does:
   `build_cii_xml` (XML + XSD check), `check_einvoice` (XSD and the EN 16931 schematron, Saxon,
   app/documents/validation.py) and `render_pdf` (Jinja HTML and the glyph check → WeasyPrint
   layout → WeasyPrint PDF/A-3b with the XML and the Factur-X XMP, app/documents/pdfa.py).
   Nothing is stored;
3. prints invoices per second — by wall clock and by this process's CPU time (the figure for
   "one core" when other work shares the machine) —, the mean, median and p95 per invoice, the
   share of each step, the cold start (`warm_up()`: what a process pays once), the Python
   function calls per invoice (a figure the machine's load does not move) and a calibration
   loop's time (how fast the machine was during the run: shared VMs vary by ±30 % in minutes).

`--profile FILE` runs the measurement under cProfile (slower: its figures are then not benchmark
figures), writes the stats to FILE and prints the top functions by cumulative time.
"""
from __future__ import annotations

import cProfile
import logging
import pstats
import random
import statistics
import sys
import time
from datetime import date
from decimal import Decimal

from benchlib import SqliteDatabase, create_app_on
from benchlib.options import add_redis, add_smoke, apply_smoke, parser_for

AS_OF = date(2026, 11, 26)
RATES = ("19", "19", "7", "19.45", "0")


def parse_args(argv: list[str] | None = None):
    parser = parser_for(__doc__)
    parser.add_argument("--invoices", type=int, default=200, help="invoices to render (default 200)")
    parser.add_argument("--warmup", type=int, default=3, help="renders before measuring (default 3)")
    add_redis(parser, "redis://127.0.0.1:6379/9", flushed=False)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", metavar="FILE", help="run under cProfile and write the stats to FILE")
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, invoices=3, warmup=1)
    return args


def seed(count: int, rng: random.Random):
    """One legal entity, `count` contracts, billed: `count` issued invoices (ids)."""
    from app.audit import Actor
    from app.billing.runs import execute_run, start_billing_run
    from app.extensions import db
    from app.models import BillingRunItem, Contract, ContractLine, Customer, Invoice
    from app.records.entities import EntityInput, create_legal_entity

    entity = create_legal_entity(EntityInput(
        code="DE01", name="Arbill Demo GmbH", country="DE", currency="EUR", vat_id="DE136695976",
        timezone="Europe/Berlin", locale="de_DE", address_line1="Friedrichstraße 68", postcode="10117", city="Berlin",
        payment_terms_days=14, finance_email="finance@arbill.example"))
    entity.iban, entity.bic, entity.sepa_creditor_id = "DE89370400440532013000", "COBADEFFXXX", "DE98ZZZ09999999999"
    db.session.flush()
    for n in range(1, count + 1):
        sepa = n % 4 == 0
        customer = Customer(
            legal_entity_id=entity.id, name=f"Customer {n:05d} GmbH", email=f"ap{n}@example.com",
            address_line1="Accounts payable", address_line2=f"Hauptstraße {n}", postcode=str(10000 + n % 89999),
            city="Berlin", country="DE",
            vat_id=f"DE{100000000 + n}" if n % 3 else None,
            payment_method="sepa_debit" if sepa else "manual",
            iban="DE02120300000000202051" if sepa else None,
            mandate_reference=f"MNDT-{n:06d}" if sepa else None, mandate_date=date(2026, 1, 1) if sepa else None)
        db.session.add(customer)
        db.session.flush()
        contract = Contract(legal_entity_id=entity.id, customer_id=customer.id, reference=f"C-{n:05d}",
                            status="active", currency="EUR", frequency="monthly", start_date=date(2026, 11, 1))
        for position in range(1, rng.randint(1, 3) + 1):
            contract.lines.append(ContractLine(
                position=position, description=rng.choice(["Arbill subscription", "Additional seats",
                                                           "Support plan", "Onboarding handbook"]),
                quantity=Decimal(rng.choice(["1", "2", "3", "12", "1.5"])),
                unit_price=Decimal(rng.randint(500, 99000)) / 100, vat_rate=Decimal(rng.choice(RATES))))
        db.session.add(contract)
    db.session.commit()
    result = start_billing_run(entity, AS_OF, "cli", Actor.system("bench"), enqueue=False)
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    reasons = set(db.session.scalars(db.select(BillingRunItem.reason).where(BillingRunItem.status == "failed")))
    if reasons:
        failed = db.session.scalar(db.select(db.func.count()).where(BillingRunItem.status == "failed"))
        print(f"note: the billing run refused {failed} contract(s): {'; '.join(sorted(reasons))}")
    return list(db.session.scalars(db.select(Invoice.id).where(Invoice.status == "issued").order_by(Invoice.id)))


def load(ids):
    from sqlalchemy.orm import selectinload

    from app.extensions import db
    from app.models import Invoice

    return list(db.session.scalars(
        db.select(Invoice).where(Invoice.id.in_(ids)).order_by(Invoice.id)
        .options(selectinload(Invoice.lines), selectinload(Invoice.legal_entity),
                 selectinload(Invoice.customer), selectinload(Invoice.contract))))


def measure(invoices, timings, checks):
    """Each invoice as the document service makes it: XML (+ XSD), the EN 16931 check, the PDF."""
    from app.documents.einvoice import build_cii_xml
    from app.documents.pdf import render_pdf
    from app.documents.validation import check_einvoice

    wall, cpu, sizes = [], [], []
    for invoice in invoices:
        w0, c0 = time.perf_counter(), time.process_time()
        x0 = time.perf_counter()
        xml = build_cii_xml(invoice)
        x1 = time.perf_counter()
        timings.xml += x1 - x0
        check_einvoice(xml, invoice.number)
        x2, k2 = time.perf_counter(), time.process_time()
        checks.append((x2 - x1, k2 - c0 - (x1 - x0)))
        pdf = render_pdf(invoice, xml, timings=timings)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        sizes.append(len(pdf))
    return wall, cpu, sizes


def calls_per_invoice(invoices) -> float:
    """Function calls (cProfile) per build_cii_xml + render_pdf: a figure the machine's load does not move."""
    from app.documents.einvoice import build_cii_xml
    from app.documents.pdf import render_pdf

    profiler = cProfile.Profile()
    profiler.enable()
    for invoice in invoices:
        render_pdf(invoice, build_cii_xml(invoice))
    profiler.disable()
    return pstats.Stats(profiler).total_calls / len(invoices)


def calibration() -> float:
    started = time.process_time()
    table: dict[int, int] = {}
    for i in range(1_000_000):
        table[i % 1000] = table.get(i % 1000, 0) + i
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from app.documents.pdf import RenderTimings, render_pdf
    from app.documents.warm import warm_up
    from worker import settle_heap

    bench = SqliteDatabase("arbill-bench-render")
    bench.create()
    try:
        app = create_app_on(bench, args.redis)
        with app.app_context():
            t0 = time.perf_counter()
            ids = seed(args.invoices, random.Random(args.seed))
            print(f"seeded and billed {len(ids)} invoices in {time.perf_counter() - t0:.1f} s")
            invoices = load(ids)
            lines = [len(i.lines) for i in invoices]

            c0 = time.perf_counter()
            warm_up()
            cold = time.perf_counter() - c0
            c0 = time.perf_counter()
            render_pdf(invoices[0])
            first = time.perf_counter() - c0
            for invoice in invoices[1:1 + args.warmup]:
                render_pdf(invoice)
            settle_heap()  # gc.freeze() and the collector's thresholds, as worker.py after its warm-up

            timings = RenderTimings()
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
            speed_before = calibration()
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            checks: list[tuple[float, float]] = []
            wall, cpu, sizes = measure(invoices, timings, checks)
            total_wall, total_cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
            speed_after = calibration()
            if args.profile:
                profiler.disable()
                profiler.dump_stats(args.profile)
            calls = calls_per_invoice(invoices[:20])

        report(len(invoices), lines, (cold, first), wall, cpu, sizes, total_wall, total_cpu, timings, checks)
        print(f"  Python function calls per invoice: {calls:,.0f} (independent of the machine's load: "
              f"compare changes with it)")
        print(f"  calibration: a fixed pure-Python loop took {speed_before * 1000:.0f} ms CPU before the run and "
              f"{speed_after * 1000:.0f} ms after (how fast this machine was meanwhile)")
        if args.profile:
            print(f"\n(profiled run: figures above are slowed by cProfile; stats in {args.profile})")
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(30)
        bad = [i for i, size in enumerate(sizes) if size < 1000]
        ok = len(sizes) == len(ids) == args.invoices and not bad
        print("correctness: " + ("OK" if ok else f"PROBLEMS: {len(ids)} invoices billed, {len(sizes)} rendered, "
                                 f"{len(bad)} PDFs under 1 KB (expected {args.invoices})"))
        return 0 if ok else 1
    finally:
        bench.drop()


def report(count, lines, cold, wall, cpu, sizes, total_wall, total_cpu, timings, checks) -> None:
    ms = lambda seconds: f"{seconds * 1000:.1f}"  # noqa: E731
    check_wall = [w for w, _c in checks]
    steps = {"XML (build + XSD check)": timings.xml, "EN 16931 schematron": sum(check_wall),
             "HTML (Jinja + glyphs)": timings.html,
             "WeasyPrint layout": timings.layout, "WeasyPrint PDF/A-3b + XML": timings.pdf}
    measured = sum(steps.values())
    print(f"\nrendered {count} invoices ({min(lines)}-{max(lines)} lines, mean {statistics.mean(lines):.2f}) "
          f"in one process, Python {sys.version.split()[0]}")
    print(f"  throughput   {count / total_wall:6.1f} invoices/s wall clock   "
          f"{count / total_cpu:6.1f} invoices/s per core (CPU time of this process)")
    print(f"  per invoice  wall  mean {ms(statistics.mean(wall))} ms  median {ms(statistics.median(wall))} ms  "
          f"p95 {ms(sorted(wall)[int(0.95 * (len(wall) - 1))])} ms")
    print(f"               CPU   mean {ms(statistics.mean(cpu))} ms  median {ms(statistics.median(cpu))} ms  "
          f"p95 {ms(sorted(cpu)[int(0.95 * (len(cpu) - 1))])} ms")
    print(f"  cold start   warm_up() {ms(cold[0])} ms (imports, fonts, stylesheet), then the first invoice "
          f"{ms(cold[1])} ms")
    print(f"  PDF size     mean {statistics.mean(sizes) / 1024:.1f} KiB")
    print(f"  EN 16931 check (XSD + schematron, Saxon) per invoice: wall mean {ms(statistics.mean(check_wall))} ms, "
          f"median {ms(statistics.median(check_wall))} ms; CPU of this process (Saxon's threads included) "
          f"mean {ms(statistics.mean(c for _w, c in checks))} ms")
    print("  share of wall time per step:")
    for name, seconds in steps.items():
        print(f"    {name:<26} {100 * seconds / measured:5.1f} %   {ms(seconds / count)} ms/invoice")


if __name__ == "__main__":
    sys.exit(main())
