#!/usr/bin/env python
"""Benchmark of the lists paged by key: first page and page 500 of each list through the Flask app.

    python bench/lists.py --db postgresql://postgres@127.0.0.1:5432/postgres

What it does, on a throw-away database `arbill_bench_lists_<random>` created on the server of --db (dropped at
the end, also on an error, Ctrl-C or SIGTERM):

1. migrates it and seeds with the AR aging bench's seeding (bench/aging.py `seed`: one legal entity, an admin,
   --customers customers with two contracts each, and --invoices invoices in all: 80 % open, the rest paid,
   void and drafts, which have no number); then --runs-seeded finished billing runs and --bank-entries bank
   credits, a quarter of them waiting in the queue (the rest matched);
2. for each list and order, builds the link to page 500 (`app.paging.cursor_at`: the cursor of row 499 × 25,
   as if one had followed Next 499 times), checks that page 500 starts at the row OFFSET 12,475 gives (the
   correctness check), and measures GET of page 1 and of page 500 through the Flask test client, signed in as
   the admin: the median of --repeat requests after one warm-up. Each figure is the whole request: session,
   the page's queries (rows, the capped count, the invoice list's totals when under the cap) and rendering;
3. prints EXPLAIN (ANALYZE, BUFFERS) of the invoice list's page-500 query in its default order.
"""
from __future__ import annotations

import os
import sys
from datetime import date

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql

from aging import ADMIN, seed
from benchlib import BenchDatabase
from benchlib.options import add_keep_db, add_redis, add_smoke, apply_smoke, parser_for, require_postgres
from benchlib.running import on_fresh_database
from benchlib.sampling import machine
from benchlib.signin import signed_in_test_client
from benchlib.timing import median_ms, say

PAGE = 500

INSERT_RUNS = """
INSERT INTO billing_runs (legal_entity_id, number, as_of, period_label, status, "trigger", actor_type, actor_label,
                          dry_run, contracts_total, contracts_processed, contracts_invoiced, contracts_failed,
                          invoices_created, totals, queued_at, started_at, finished_at, event_depth)
SELECT :entity, g, DATE '2020-01-01' + g / 10, 'bench', 'completed', 'cli', 'system', 'bench', false, 0, 0, 0, 0,
       0, '{}', now() - (:n - g) * interval '1 hour', now() - (:n - g) * interval '1 hour',
       now() - (:n - g) * interval '1 hour' + interval '1 minute', 0
FROM generate_series(1, CAST(:n AS integer)) g
"""
INSERT_STATEMENT = """
INSERT INTO bank_statements (legal_entity_id, format, statement_id, currency, file_name, file_sha256, entry_count,
                             duplicate_count, imported_by, imported_at)
VALUES (:entity, 'camt053', 'BENCH-1', 'EUR', 'bench.xml', repeat('0', 64), :n, 0, 'bench', now()) RETURNING id
"""
# Every fourth credit waits (unmatched); the others are matched in full. Amounts 1.00 .. 5,000.99, booking
# dates over 400 days, so that both orders of the queue have ties broken by the id.
INSERT_ENTRIES = """
INSERT INTO bank_entries (statement_id, legal_entity_id, fingerprint, booking_date, direction, amount, currency,
                          reversal, remittance, counterparty_name, status, applied_amount, created_at)
SELECT :statement, :entity, 'bench-' || g, DATE '2026-11-26' - (g % 400), 'credit', amount, 'EUR', false,
       'Transfer ' || g, 'Payer ' || (g % 5000), CASE WHEN g % 4 = 0 THEN 'unmatched' ELSE 'matched' END,
       CASE WHEN g % 4 = 0 THEN 0 ELSE amount END, now()
FROM (SELECT g, (1 + ((g::bigint * 7919) % 500000) / 100.0)::numeric(18, 2) AS amount
      FROM generate_series(1, CAST(:n AS integer)) g) s
"""


def seed_runs_and_bank(bench: BenchDatabase, entity_id: int, runs: int, entries: int) -> None:
    engine = create_engine(bench.url)
    with engine.begin() as conn:
        conn.execute(text(INSERT_RUNS), {"entity": entity_id, "n": runs})
        statement = conn.execute(text(INSERT_STATEMENT), {"entity": entity_id, "n": entries}).scalar()
        conn.execute(text(INSERT_ENTRIES), {"statement": statement, "entity": entity_id, "n": entries})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE billing_runs, bank_statements, bank_entries"))
    engine.dispose()


def lists(entity):
    """(label, URL path, query, ordering, sorts to measure) of every list paged by key."""
    from app.billing.queries import RUN_ORDER, runs_query
    from app.payments import bank_queue
    from app.records import contracts, customers, invoices

    filters = invoices.InvoiceFilters()
    return [
        ("invoices", "/invoices", invoices.invoice_query(entity, filters, entity.today()), invoices.INVOICE_ORDER,
         [invoices.INVOICE_ORDER.default] + [s.name for s in invoices.INVOICE_ORDER.sorts]),
        ("contracts", "/contracts", contracts.contract_query(entity), contracts.CONTRACT_ORDER,
         [s.name for s in contracts.CONTRACT_ORDER.sorts]),
        ("customers", "/customers", customers.customer_query(entity), customers.CUSTOMER_ORDER, ["name", "-name"]),
        ("runs", "/runs", runs_query(entity.id), RUN_ORDER, ["-number", "-started"]),
        ("bank queue", "/bank", bank_queue.queue_query(entity), bank_queue.QUEUE_ORDER, ["booked", "-amount"]),
    ]


def plan_of(query) -> list[str]:
    from app.extensions import db

    sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()


def page_500_links(app, entity_id: int, page: int) -> tuple[list[tuple], list[str]]:
    """(label, sort, URL of page 1, URL of page `page`, check) per list and order, and the plan of the invoice
    list's far page. The check: page `page` read by key holds the rows OFFSET gives, and Previous from the page
    after it gives it again."""
    from flask import current_app

    from app.extensions import db
    from app.models import LegalEntity
    from app.paging import beyond, cursor_at, decode_cursor, in_order, read_page

    offset, secret = (page - 1) * 25, None
    found, plan = [], []
    with app.test_request_context():
        secret = current_app.secret_key
        entity = db.session.get(LegalEntity, entity_id)
        for label, path, query, ordering, sorts in lists(entity):
            for sort in sorts:
                cursor = cursor_at(query, ordering, sort, secret, offset - 1)
                if cursor is None:
                    found.append((label, sort, None, None, f"fewer than {offset + 1} rows"))
                    continue
                shown = read_page(query, ordering, sort, secret, after=cursor, total=(0, False))
                after = read_page(query, ordering, sort, secret, after=shown.next_cursor, total=(0, False)
                                  ) if shown.next_cursor else None
                back = read_page(query, ordering, sort, secret, before=after.prev_cursor, total=(0, False)
                                 ) if after and after.prev_cursor else shown
                rows = db.session.execute(in_order(query, ordering, sort).offset(offset).limit(25))
                expected = [row[0] if len(row) == 1 else tuple(row) for row in rows]
                correct = len(shown.items) == 25 and shown.items == expected == back.items
                found.append((label, sort, f"{path}?sort={sort}", f"{path}?sort={sort}&after={cursor}",
                              "OK" if correct else "MISMATCH"))
                if label == "invoices" and sort == ordering.default:
                    keys, descending = ordering.find(sort)[0].keys, sort.startswith("-")
                    values = decode_cursor(secret, cursor, sort, len(keys))
                    plan = plan_of(in_order(query, ordering, sort)
                                   .where(beyond(keys, [descending] * len(keys), values)).limit(26))
        db.session.remove()
    return found, plan


def measure(app, links: list[tuple], repeat: int) -> list[tuple]:
    client = signed_in_test_client(app, ADMIN)
    results = []
    for label, sort, first, later, correct in links:
        if first is None:
            results.append((label, sort, correct, None, None))
            continue
        figures = []
        for url in (first, later):
            def get(url=url):
                response = client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url[:80]} answered {response.status_code}")
            figures.append(median_ms(get, repeat))
        say(f"measured {label} {sort}: page 1 {figures[0][0]:.1f} ms, far page {figures[1][0]:.1f} ms (median)")
        results.append((label, sort, correct, *figures))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--invoices", type=int, default=1_000_000, help="invoices in all (default 1,000,000)")
    parser.add_argument("--customers", type=int, default=20_000, help="customers (default 20,000; 2 contracts each)")
    parser.add_argument("--runs-seeded", type=int, default=15_000, help="billing runs (default 15,000)")
    parser.add_argument("--bank-entries", type=int, default=100_000,
                        help="bank credits (default 100,000; a quarter wait in the queue)")
    parser.add_argument("--page", type=int, default=PAGE, help=f"the far page measured (default {PAGE})")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL; a fresh arbill_bench_lists_* database is made there")
    add_redis(parser, "redis://127.0.0.1:6379/9", flushed=False)
    parser.add_argument("--repeat", type=int, default=10, help="measured requests per figure (median; default 10)")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, invoices=2_000, customers=100, runs_seeded=80, bank_entries=400, page=3, repeat=2)
    require_postgres(parser, args.db, "it seeds with generate_series and prints PostgreSQL's plan")
    if min(args.invoices, args.customers, args.runs_seeded, args.bank_entries, args.repeat, args.page - 1) < 1:
        parser.error("the sizes and --repeat must be at least 1, --page at least 2")

    return on_fresh_database(args, "arbill_bench_lists", lambda bench, app: run(args, bench, app))


def run(args, bench, app) -> int:
    say(f"Arbill lists benchmark: {args.invoices:,} invoices, {args.customers:,} customers, page 1 and page "
        f"{args.page} of each list, database {bench.name}")
    open_invoices = round(args.invoices * 0.8)
    seeded = seed(app, bench, open_invoices, args.customers, (args.invoices - open_invoices) / open_invoices,
                  date(2026, 11, 26))
    seed_runs_and_bank(bench, seeded["entity_id"], args.runs_seeded, args.bank_entries)
    say(f"seeded in {seeded['seconds']:.1f} s (not measured): invoices " +
        ", ".join(f"{k} {v:,}" for k, v in seeded["counts"].items()) +
        f"; {seeded['contracts']:,} contracts; {args.runs_seeded:,} runs; {args.bank_entries:,} bank credits "
        f"({args.bank_entries // 4:,} waiting); invoices table {seeded['invoices_size']}")
    links, plan = page_500_links(app, seeded["entity_id"], args.page)
    say(f"EXPLAIN (ANALYZE, BUFFERS) of the invoice list's page query (default order, page {args.page}):")
    for line in plan:
        say("  " + line)
    load_before = os.getloadavg()
    results = measure(app, links, args.repeat)
    load_after = os.getloadavg()

    info = machine()
    say("\n== SUMMARY ==")
    say(f"machine     {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, {info['os']}, "
        f"Python {info['python']}")
    say("load avg    " + " / ".join(f"{v:.1f}" for v in load_before) + " before, " +
        " / ".join(f"{v:.1f}" for v in load_after) + " after (1/5/15 min): other work inflates wall times")
    say(f"{'list':11} {'order':10} {'page':>5} {'median ms':>10} {'min':>7} {'max':>7} {'CPU ms':>7}  check")
    for label, sort, correct, first, later in results:
        if first is None:
            say(f"{label:11} {sort:10} {'-':>5} {'-':>10}  {correct}")
            continue
        for page, (ms, runs, cpu) in ((1, first), (args.page, later)):
            say(f"{label:11} {sort:10} {page:>5} {ms:10.1f} {min(runs):7.1f} {max(runs):7.1f} {cpu:7.1f}  {correct}")
    wrong = [f"{r[0]} {r[1]}: {r[2]}" for r in results if r[2] != "OK"]
    say("correctness: " + ("OK" if not wrong else "; ".join(wrong)))
    return 0 if not wrong else 1

if __name__ == "__main__":
    sys.exit(main())
