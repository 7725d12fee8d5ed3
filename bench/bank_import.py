#!/usr/bin/env python
"""Benchmark of importing a bank statement and applying it (cash application): prints figures, never fails.

    python bench/bank_import.py --entries 10000 --invoices 100000 --db postgresql://postgres@127.0.0.1:5432/postgres

On a throw-away database `arbill_bench_bank_<random>` (dropped at the end; `--db sqlite`: a SQLite file): migrates it, makes one legal entity
with --invoices open invoices over --invoices / 5 customers (COPY, not measured), writes a camt.053.001.08 of
--entries credits as payers send them — 60 % with the invoice's RF creditor reference, 15 % with the invoice
number in the text, 10 % with only the payer's name and the exact amount, 5 % short payments, 5 % paying two
invoices at once, 5 % that nobody can match — then times `import_statement` (read, check, store, match,
apply, audit, events) with its commit, and the same file again (every entry a duplicate). Memory: the
process's peak RSS before and after the import.
"""
from __future__ import annotations

import cProfile
import pstats
import resource
import sys
import time
from datetime import date, datetime, timezone
from decimal import Decimal

from benchlib import BenchDatabase, clean_up, create_app_on
from benchlib.options import add_db, add_keep_db, add_smoke, apply_smoke, parser_for

TOTAL = Decimal("58.53")
ACCOUNT = "DE02120300000000202051"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(invoices: int) -> int:
    from app.bulk import copy_rows, new_ids
    from app.extensions import db
    from app.models import Contract, Customer, Invoice
    from tests.factories import CUSTOMER_ADDRESS, make_entity

    entity = make_entity(iban=ACCOUNT, bic="BYLADEM1001")
    db.session.commit()
    customers = max(1, invoices // 5)
    now = datetime.now(timezone.utc)
    customer_ids = new_ids(Customer.__table__, customers)
    copy_rows(Customer.__table__, ("id", "legal_entity_id", "name", "email", "payment_method", "address_line1",
                                   "postcode", "city", "country", "created_at"),
              [(cid, entity.id, f"Payer {n} GmbH", f"ap{n}@example.com", "manual", CUSTOMER_ADDRESS["address_line1"],
                CUSTOMER_ADDRESS["postcode"], CUSTOMER_ADDRESS["city"], "DE", now)
               for n, cid in enumerate(customer_ids, start=1)])
    contract_ids = new_ids(Contract.__table__, customers)
    copy_rows(Contract.__table__, ("id", "legal_entity_id", "customer_id", "reference", "status", "currency",
                                   "frequency", "start_date", "created_at"),
              [(kid, entity.id, cid, f"C-{n}", "active", "EUR", "monthly", date(2026, 1, 1), now)
               for n, (kid, cid) in enumerate(zip(contract_ids, customer_ids), start=1)])
    ids = new_ids(Invoice.__table__, invoices)
    copy_rows(Invoice.__table__, ("id", "legal_entity_id", "customer_id", "contract_id", "kind", "period_start",
                                  "period_end", "number", "sequence_year", "sequence_number", "issue_date", "due_date",
                                  "currency", "net_amount", "tax_amount", "total_amount", "amount_due", "status",
                                  "created_at"),
              [(iid, entity.id, customer_ids[n % customers], contract_ids[n % customers], "invoice",
                date(2020 + (n // customers) // 12, (n // customers) % 12 + 1, 1),
                date(2020 + (n // customers) // 12, (n // customers) % 12 + 1, 28),
                f"DE01-2026-{n + 1:06d}", 2026, n + 1, date(2026, 11, 1), date(2026, 11, 15), "EUR",
                Decimal("49.00"), Decimal("9.53"), TOTAL, TOTAL, "issued", now)
               for n, iid in enumerate(ids)])
    db.session.commit()
    return entity.id


def statement(entries: int, invoices: int) -> bytes:
    from app.banking import samples
    from app.billing.references import creditor_reference

    customers = max(1, invoices // 5)
    rows = []
    for n in range(entries):
        number = f"DE01-2026-{n + 1:06d}"
        kind = n % 20
        row = {"amount": str(TOTAL), "direction": "credit", "booking_date": "2026-12-03",
               "bank_reference": f"BR{n:08d}", "counterparty_name": f"Payer {n % customers + 1} GmbH",
               "counterparty_iban": "DE89370400440532013000"}
        if kind < 12:
            row["creditor_reference"] = creditor_reference(number)
        elif kind < 15:
            row["remittance"] = f"Rechnung {number} vielen Dank"
        elif kind < 17:  # payer and amount only: its customer's one invoice of that amount? (several: waits)
            row["remittance"] = "Zahlung"
            row["counterparty_iban"] = None
        elif kind == 17:
            row.update(amount="30.00", remittance=f"Teilzahlung {number}")
        elif kind == 18:
            other = f"DE01-2026-{entries + n + 1:06d}"
            row.update(amount=str(TOTAL * 2), remittance=f"{number} {other}")
        else:
            row.update(remittance="unbekannt", counterparty_name=f"Stranger {n}")
        rows.append(row)
    return samples.camt053(rows, version="08", account_iban=ACCOUNT, statement_id="BENCH-1")


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    add_db(parser, "arbill_bench_bank", sqlite=True)
    add_keep_db(parser)
    add_smoke(parser)
    parser.add_argument("--profile", action="store_true", help="print where the import spends its time")
    args = parser.parse_args(argv)
    apply_smoke(args, parser, entries=100, invoices=500)
    bench = BenchDatabase.new(args.db, "arbill_bench_bank")
    created, app = False, None
    try:
        bench.create()
        created = True
        from sqlalchemy import func, select

        from app.audit import Actor
        from app.extensions import db
        from app.models import BankEntry, LegalEntity, Payment
        from app.payments.cash import import_statement

        app = create_app_on(bench, "redis://127.0.0.1:1/0")  # never connected to
        with app.app_context():
            started = time.perf_counter()
            entity_id = seed(args.invoices)
            print(f"seeded {args.invoices:,} open invoices in {time.perf_counter() - started:.1f} s (not measured)")
            started = time.perf_counter()
            data = statement(args.entries, args.invoices)
            print(f"wrote a camt.053.001.08 of {args.entries:,} entries, {len(data) / 1024 / 1024:.1f} MiB, in "
                  f"{time.perf_counter() - started:.2f} s (not measured)")
            db.session.remove()
            rss_before = peak_rss_mib()
            profile = cProfile.Profile() if args.profile else None
            if profile:
                profile.enable()
            started = time.perf_counter()
            entity = db.session.get(LegalEntity, entity_id)
            result = import_statement(entity, data, "bench.xml", Actor.system("bench"))
            db.session.commit()
            seconds = time.perf_counter() - started
            if profile:
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
            rss_after = peak_rss_mib()
            print(f"import and apply: {seconds:.2f} s for {result.entries:,} entries against {args.invoices:,} open "
                  f"invoices ({result.entries / seconds:,.0f} entries/s): {result.matched:,} matched, "
                  f"{result.partially_matched:,} partially, {result.unmatched:,} unmatched; applied "
                  f"{', '.join(f'{a:,} {c}' for c, a in result.amount_applied.items())}")
            print(f"peak RSS {rss_before:,.0f} MiB before, {rss_after:,.0f} MiB after "
                  f"(+{rss_after - rss_before:,.0f} MiB; the file itself {len(data) / 1024 / 1024:.1f} MiB)")
            db.session.remove()
            started = time.perf_counter()
            again = import_statement(db.session.get(LegalEntity, entity_id), data, "bench.xml", Actor.system("bench"))
            db.session.commit()
            print(f"the same file again: {time.perf_counter() - started:.2f} s, {again.entries} new, "
                  f"{again.duplicate_entries:,} duplicates")
            payments = db.session.scalar(select(func.count()).select_from(Payment))
            entries = db.session.scalar(select(func.count()).select_from(BankEntry))
            problems = []
            if entries != args.entries:
                problems.append(f"{entries:,} entries stored, expected {args.entries:,}")
            if (again.entries, again.duplicate_entries) != (0, args.entries):
                problems.append(f"the same file again: {again.entries} new, {again.duplicate_entries} duplicates")
            if not 0 < payments <= args.entries:
                problems.append(f"{payments:,} payments for {args.entries:,} entries")
            print(f"check: {entries:,} entries stored, {payments:,} payments")
            print("correctness: " + ("OK" if not problems else "PROBLEMS: " + "; ".join(problems)))
        return 1 if problems else 0
    finally:
        clean_up(app, bench, created, args.keep_db, None, print)


if __name__ == "__main__":
    sys.exit(main())
