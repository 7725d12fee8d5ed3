#!/usr/bin/env python
"""Benchmark of closing a SEPA batch: prints figures, never passes or fails a test.

    python bench/sepa_close.py --debits 5000 --db postgresql://postgres@127.0.0.1:5432/postgres

On a throw-away database `arbill_bench_sepa_<random>` (dropped at the end; `--db sqlite`: a SQLite file): migrates it, makes one legal entity
with SEPA creditor data and --debits customers paying by SEPA direct debit, each with one issued invoice in the
open batch (every other one with an earlier collected debit under its mandate, so the batch has FRST and RCUR
blocks; every tenth partly paid, every twentieth void so it drops out), then times `close_batch` (re-read under
lock, per-item sequence type, pain.008.001.08 built and XSD-validated by sepaxml) and reports the file size.
"""
from __future__ import annotations

import cProfile
import pstats
import sys
import time
from datetime import date
from decimal import Decimal

from benchlib import BenchDatabase, clean_up, create_app_on
from benchlib.options import add_db, add_keep_db, add_smoke, apply_smoke, parser_for

DUE = date(2026, 12, 10)


def seed(debits: int) -> int:
    from app.extensions import db
    from app.models import Collection, Contract, Customer, Invoice, SepaBatch, SepaBatchItem
    from tests.factories import CUSTOMER_ADDRESS, make_entity

    entity = make_entity(sepa_creditor_id="DE98ZZZ09999999999", iban="DE02120300000000202051", bic="BYLADEM1001")
    old = SepaBatch(legal_entity_id=entity.id, status="closed", message_id="ARBDE01OLD")
    batch = SepaBatch(legal_entity_id=entity.id, status="open")
    db.session.add_all([old, batch])
    db.session.flush()
    for n in range(1, debits + 1):
        customer = Customer(legal_entity_id=entity.id, name=f"Customer {n}", payment_method="sepa_debit",
                            iban="DE89370400440532013000", mandate_reference=f"M-{n}", mandate_date=date(2026, 1, 1),
                            **CUSTOMER_ADDRESS)
        db.session.add(customer)
        db.session.flush()
        contract = Contract(legal_entity_id=entity.id, customer_id=customer.id, reference=f"C-{n}", status="active",
                            currency="EUR", frequency="monthly", start_date=date(2026, 11, 1))
        db.session.add(contract)
        db.session.flush()
        total = Decimal("58.53")
        invoices = []
        for period, (number, status, due) in enumerate(((f"DE01-2026-{2 * n:06d}", "paid", Decimal(0)),
                                                        (f"DE01-2026-{2 * n + 1:06d}", "issued", total)), start=10):
            if n % 20 == 0 and status == "issued":
                status = "void"
            if n % 10 == 5 and status == "issued":
                due = Decimal("8.53")
            invoices.append(Invoice(legal_entity_id=entity.id, customer_id=customer.id, contract_id=contract.id,
                                    period_start=date(2026, period, 1), period_end=date(2026, period, 28),
                                    number=number, sequence_year=2026, sequence_number=int(number[-6:]),
                                    issue_date=date(2026, 11, 26), due_date=DUE, currency="EUR", net_amount=Decimal(49),
                                    tax_amount=Decimal("9.53"), total_amount=total, amount_due=due, status=status,
                                    kind="invoice"))
        db.session.add_all(invoices)
        db.session.flush()
        for invoice, target, state in ((invoices[0], old, "collected"), (invoices[1], batch, "pending")):
            if target is old and n % 2:
                continue
            collection = Collection(invoice_id=invoice.id, method="sepa_debit", status="in_batch")
            db.session.add(collection)
            db.session.flush()
            db.session.add(SepaBatchItem(batch_id=target.id, invoice_id=invoice.id, collection_id=collection.id,
                                         amount=total, end_to_end_id=f"{invoice.number}-1", status=state,
                                         mandate_reference=customer.mandate_reference, debtor_iban=customer.iban))
    db.session.commit()
    return batch.id


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--debits", type=int, default=2000)
    add_db(parser, "arbill_bench_sepa", sqlite=True)
    add_keep_db(parser)
    add_smoke(parser)
    parser.add_argument("--profile", action="store_true", help="print where close_batch spends its time")
    args = parser.parse_args(argv)
    apply_smoke(args, parser, debits=50)
    bench = BenchDatabase.new(args.db, "arbill_bench_sepa")
    created, app = False, None
    try:
        bench.create()
        created = True
        from sqlalchemy import func, select

        from app.audit import Actor
        from app.extensions import db
        from app.models import SepaBatch, SepaBatchItem
        from app.payments.sepa import close_batch

        app = create_app_on(bench, "redis://127.0.0.1:1/0")  # never connected to
        with app.app_context():
            started = time.perf_counter()
            batch_id = seed(args.debits)
            print(f"seeded {args.debits:,} debits in {time.perf_counter() - started:.1f} s (not measured)")
            profile = cProfile.Profile() if args.profile else None
            if profile:
                profile.enable()
            started = time.perf_counter()
            batch = close_batch(db.session.get(SepaBatch, batch_id), Actor.system("bench"), date(2026, 12, 4))
            db.session.commit()
            seconds = time.perf_counter() - started
            if profile:
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            counts = dict(db.session.execute(select(SepaBatchItem.sequence_type, func.count())
                                             .where(SepaBatchItem.batch_id == batch_id)
                                             .group_by(SepaBatchItem.sequence_type)).all())
            withdrawn = db.session.scalar(select(func.count()).where(SepaBatchItem.batch_id == batch_id,
                                                                     SepaBatchItem.status == "withdrawn"))
            print(f"close_batch: {seconds:.2f} s for {args.debits:,} debits ({batch.item_count:,} sent: "
                  f"{counts.get('FRST', 0):,} FRST, {counts.get('RCUR', 0):,} RCUR; {withdrawn:,} withdrawn), "
                  f"control sum {batch.control_sum:,.2f} EUR, file {len(batch.xml) / 1024:,.0f} KiB, "
                  f"message id {batch.message_id}, collection date {batch.collection_date}")
            void = args.debits // 20  # every twentieth invoice is void and drops out
            sent = counts.get("FRST", 0) + counts.get("RCUR", 0)
            ok = (batch.item_count, sent, withdrawn) == (args.debits - void, args.debits - void, void)
            print("correctness: " + ("OK" if ok else f"PROBLEMS: expected {args.debits - void:,} sent, {void:,} withdrawn"))
        return 0 if ok else 1
    finally:
        clean_up(app, bench, created, args.keep_db, None, print)


if __name__ == "__main__":
    sys.exit(main())
