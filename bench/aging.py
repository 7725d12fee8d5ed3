#!/usr/bin/env python
"""Benchmark of the AR aging report: prints figures, never passes or fails a test.

    python bench/aging.py --invoices 100000 --db postgresql://postgres@127.0.0.1:5432/postgres

What it does, on a throw-away database `arbill_bench_aging_<random>` created on the server of --db
(dropped at the end, also on an error, Ctrl-C or SIGTERM):

1. migrates it (Flask-Migrate `upgrade()` inside `create_app(cfg)`, cfg = TestingConfig with the
   database and Redis overridden), creates one legal entity and an admin through the app, then
   seeds with set-based INSERT … SELECT FROM generate_series (in batches): --customers customers,
   two contracts each (every tenth contract in USD, the rest EUR), --invoices OPEN invoices spread
   over the contracts with issue dates up to 420 days before --as-of and due dates 14 or 30 days
   later (so every bucket is filled), one in seven partly paid; plus closed invoices the report
   must skip (paid, void, draft: --closed-share of the open count). No invoice lines: the report
   never reads them;
2. measures, each as the median of --runs runs after one warm-up run:
   report    `aging_report(entity, as_of)`: every customer's row (what the CSV writes) and the key
             figures, in process;
   page      GET /reports/aging?as_of=… through the Flask test client, logged in as the admin
             (key figures, chart and totals of every customer, the first slice of customers);
   partial   GET /reports/aging/customer/<largest customer>?as_of=…&currency=EUR with HX-Request
             (the expand-one-customer row);
   csv       GET /reports/aging.csv?entity=…&as_of=…;
3. prints EXPLAIN (ANALYZE, BUFFERS) of the every-customer rows query, the credit sales query and the
   page's ranked customers query (app/reports/aging_queries.py), to judge whether an index helps; with
   --with-index, creates each index of CANDIDATE_INDEXES in the bench database (never in a
   migration) and measures again, so the summary compares the figures with and without them.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import date

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql

from benchlib import BenchDatabase
from benchlib.options import add_keep_db, add_redis, add_smoke, apply_smoke, parser_for, require_postgres
from benchlib.running import on_fresh_database
from benchlib.sampling import machine
from benchlib.signin import BenchUser, create_bench_user, signed_in_test_client
from benchlib.timing import median_ms, say

BATCH = 20_000
ADMIN = BenchUser("bench-admin@example.com", "bench aging password",
                  "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")  # admins sign in with a second factor


# ------------------------------------------------------------------ seeding (set-based)
INSERT_CUSTOMERS = """
INSERT INTO customers (id, legal_entity_id, name, email, payment_method, created_at)
SELECT g, :entity, 'Customer ' || lpad(g::text, 6, '0'), 'ap' || g || '@example.com', 'manual', now()
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
"""
INSERT_CONTRACTS = """
INSERT INTO contracts (id, legal_entity_id, customer_id, reference, status, currency, frequency, start_date,
                       created_at)
SELECT g, :entity, ((g - 1) % :customers) + 1, 'BENCH-' || lpad(g::text, 7, '0'), 'active',
       CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'EUR' END, 'monthly', DATE '2024-01-01', now()
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
"""
# One row per g: contract g % contracts + 1; a unique period per g; issue date 0..419 days before as_of
# (a multiplicative hash spreads them), due 14 or 30 days later; amounts 10.00 .. 5,009.99.
INSERT_INVOICES = """
INSERT INTO invoices (legal_entity_id, customer_id, contract_id, kind, period_start, period_end, number,
                      sequence_year, sequence_number, issue_date, due_date, currency, net_amount, tax_amount,
                      total_amount, amount_due, status, void_reason, created_at, posted_at)
SELECT :entity, ((c - 1) % :customers) + 1, c, 'invoice', DATE '1900-01-01' + g, DATE '1900-01-01' + g + 29,
       CASE WHEN :status = 'draft' THEN NULL ELSE 'BENCH-' || lpad(g::text, 8, '0') END,
       CASE WHEN :status = 'draft' THEN NULL ELSE 2026 END, CASE WHEN :status = 'draft' THEN NULL ELSE g END,
       issue, issue + CASE WHEN g % 5 = 0 THEN 30 ELSE 14 END,
       CASE WHEN c % 10 = 0 THEN 'USD' ELSE 'EUR' END,
       total, 0, total,
       CASE WHEN :status = 'issued' AND g % 7 = 0 THEN round(total / 2, 2)
            WHEN :status = 'issued' THEN total WHEN :status = 'paid' THEN 0 ELSE total END,
       :status, CASE WHEN :status = 'void' THEN 'bench' END, now(), now()
FROM (
    SELECT g, (g % :contracts) + 1 AS c,
           CAST(:as_of AS date) - ((g::bigint * 7919) % 420)::int AS issue,
           (10 + ((g::bigint * 2654435761) % 500000) / 100.0)::numeric(18, 2) AS total
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
) s
"""


def seed(app, bench: BenchDatabase, n_invoices: int, n_customers: int, closed_share: float, as_of: date) -> dict:
    from app.audit import Actor
    from app.extensions import db
    from app.records.entities import EntityInput, create_legal_entity

    started = time.perf_counter()
    with app.app_context():
        actor = Actor.system("bench")
        entity = create_legal_entity(EntityInput(code="BENCH", name="Bench Aging GmbH", country="DE", currency="EUR",
                                                 timezone="Europe/Berlin", locale="de_DE", payment_terms_days=14),
                                     actor)
        create_bench_user(ADMIN.email, "admin", ADMIN.password, actor, totp_secret=ADMIN.totp_secret)
        db.session.commit()
        entity_id = entity.id
        db.session.remove()
    n_contracts = 2 * n_customers
    closed = int(n_invoices * closed_share)
    kinds = [("issued", n_invoices), ("paid", closed * 7 // 10), ("void", closed * 15 // 100),
             ("draft", closed - closed * 7 // 10 - closed * 15 // 100)]
    engine = create_engine(bench.url)
    counts = {}
    with engine.begin() as conn:
        for sql, total in ((INSERT_CUSTOMERS, n_customers), (INSERT_CONTRACTS, n_contracts)):
            for first in range(1, total + 1, BATCH):
                conn.execute(text(sql), {"entity": entity_id, "customers": n_customers, "first": first,
                                         "last": min(first + BATCH - 1, total)})
        for table in ("customers", "contracts"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        g = 0
        for status, total in kinds:
            for first in range(g + 1, g + total + 1, BATCH):
                conn.execute(text(INSERT_INVOICES), {
                    "entity": entity_id, "customers": n_customers, "contracts": n_contracts, "status": status,
                    "as_of": as_of, "first": first, "last": min(first + BATCH - 1, g + total)})
            g += total
            counts[status] = total
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE customers, contracts, invoices"))
        # The seed's INSERTs of 20,000 invoices each updated every customer's open balance once a statement (50
        # versions of each row at 1,000,000 invoices); FULL gives the table the size autovacuum keeps it at.
        conn.execute(text("VACUUM FULL ANALYZE open_balances, daily_sales"))
        open_eur, open_usd = conn.execute(text(
            "SELECT count(*) FILTER (WHERE currency = 'EUR'), count(*) FILTER (WHERE currency = 'USD') FROM invoices "
            "WHERE status = 'issued' AND amount_due > 0 AND issue_date <= :as_of"), {"as_of": as_of}).one()
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('invoices'))")).scalar()
    engine.dispose()
    return {"entity_id": entity_id, "customers": n_customers, "contracts": n_contracts, "counts": counts,
            "open_eur": open_eur, "open_usd": open_usd, "invoices_size": size,
            "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------ measuring
# Indexes to try with --with-index (created one after the other in the bench database only).
CANDIDATE_INDEXES = {
    "open": "CREATE INDEX bench_ix_invoices_open_aging ON invoices (legal_entity_id, currency, customer_id) "
            "INCLUDE (due_date, amount_due, issue_date) WHERE status = 'issued' AND amount_due > 0",
    "sales": "CREATE INDEX bench_ix_invoices_issue_date ON invoices (legal_entity_id, issue_date) "
             "INCLUDE (status, currency, total_amount)",
}


def explain(query) -> tuple[list[str], float]:
    """EXPLAIN (ANALYZE, BUFFERS) of a SQLAlchemy query (values inlined) and its execution time in ms."""
    from app.extensions import db

    sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    lines = db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()
    executed = next(float(line.split()[-2]) for line in lines if line.startswith("Execution Time"))
    return lines, executed


def measure(app, entity_id: int, as_of: date, runs: int) -> dict:
    """The report in process, then the page, the partial and the CSV through the test client."""
    from app.extensions import db
    from app.models import LegalEntity
    from app.reports.aging import TOP_CUSTOMERS, aging_report, credit_sales_query
    from app.reports.aging_queries import customer_rows_query, ranked_customers_query

    result: dict = {"sizes": {}}
    with app.app_context():
        entity = db.session.get(LegalEntity, entity_id)
        result["version"] = db.session.execute(text("SHOW server_version")).scalar()
        report = aging_report(entity, as_of)
        largest = report.sections[0].rows[0]
        result["largest_invoices"] = largest.invoice_count
        result["sections"] = "; ".join(
            f"{s.currency} {len(s.rows):,} customers, {s.totals.invoice_count:,} invoices, open {s.totals.total}, "
            "buckets " + "/".join(str(v) for v in s.totals.amounts.values()) +
            f", DSO {s.figures.dso}, top-5 {s.figures.top_customers_share} %" for s in report.sections)
        counted = sum(s.totals.invoice_count for s in report.sections)
        expected = db.session.execute(text(
            "SELECT count(*) FROM invoices WHERE legal_entity_id = :e AND status = 'issued' AND amount_due > 0 "
            "AND issue_date <= :as_of"), {"e": entity_id, "as_of": as_of}).scalar()
        result["correctness"] = (f"{counted:,} invoices in the report, {expected:,} open in the table: "
                                 + ("OK" if counted == expected else "MISMATCH"))
        result["report"] = median_ms(lambda: aging_report(entity, as_of), runs)
        result["rows_plan"], result["rows_sql_ms"] = explain(customer_rows_query(entity.id, as_of))
        result["ranked_plan"], result["ranked_sql_ms"] = explain(ranked_customers_query(
            entity.id, as_of, [s.currency for s in report.sections], TOP_CUSTOMERS))
        result["sales_plan"], result["sales_sql_ms"] = explain(credit_sales_query(entity.id, as_of))
        code = entity.code
        db.session.remove()

    client = signed_in_test_client(app, ADMIN)
    iso = as_of.isoformat()
    result["urls"] = urls = {"page": f"/reports/aging?as_of={iso}",
                             "partial": f"/reports/aging/customer/{largest.customer_id}?as_of={iso}&currency=EUR",
                             "csv": f"/reports/aging.csv?entity={code}&as_of={iso}"}

    def get(key, headers=None):
        response = client.get(urls[key], headers=headers or {})
        if response.status_code != 200:
            raise RuntimeError(f"GET {urls[key]} answered {response.status_code}")
        result["sizes"][key] = len(response.data)

    result["page"] = median_ms(lambda: get("page"), runs)
    result["partial"] = median_ms(lambda: get("partial", {"HX-Request": "true"}), runs)
    result["csv"] = median_ms(lambda: get("csv"), runs)
    return result


def print_plans(m: dict) -> None:
    say("report: " + m["sections"])
    say("correctness: " + m["correctness"])
    say("EXPLAIN (ANALYZE, BUFFERS) of the every-customer rows query (the CSV's, per currency there):")
    for line in m["rows_plan"]:
        say("  " + line)
    say("EXPLAIN (ANALYZE, BUFFERS) of the page's ranked customers query (first slice, top customers, counts):")
    for line in m["ranked_plan"]:
        say("  " + line)
    say("EXPLAIN (ANALYZE, BUFFERS) of the credit sales (DSO) query:")
    for line in m["sales_plan"]:
        say("  " + line)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--invoices", type=int, default=100_000, help="open invoices to seed (default 100,000)")
    parser.add_argument("--customers", type=int, default=2_000, help="customers (default 2,000; 2 contracts each)")
    parser.add_argument("--closed-share", type=float, default=0.2,
                        help="paid/void/draft invoices as a share of the open ones (default 0.2)")
    parser.add_argument("--db", required=True,
                        help="a PostgreSQL URL; a fresh arbill_bench_aging_* database is made there")
    add_redis(parser, "redis://127.0.0.1:6379/9", flushed=False)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 26), help="the report's as-of date")
    parser.add_argument("--runs", type=int, default=10, help="measured runs per figure (median; default 10)")
    parser.add_argument("--with-index", action="store_true",
                        help="then create each CANDIDATE_INDEXES index in the bench database and measure again")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, invoices=500, customers=20, runs=2)
    require_postgres(parser, args.db, "it measures PostgreSQL's plans (EXPLAIN ANALYZE) and seeds with generate_series")
    if args.invoices < 1 or args.customers < 1 or args.runs < 1:
        parser.error("--invoices, --customers and --runs must be at least 1")

    def run(bench: BenchDatabase, app) -> int:
        say(f"Arbill AR aging benchmark: {args.invoices:,} open invoices, {args.customers:,} customers, "
            f"as of {args.as_of}, database {bench.name}")
        seeded = seed(app, bench, args.invoices, args.customers, args.closed_share, args.as_of)
        say(f"seeded in {seeded['seconds']:.1f} s (not measured): {seeded['customers']:,} customers, "
            f"{seeded['contracts']:,} contracts, invoices " +
            ", ".join(f"{k} {v:,}" for k, v in seeded["counts"].items()) +
            f"; open as of {args.as_of}: EUR {seeded['open_eur']:,}, USD {seeded['open_usd']:,}; "
            f"invoices table {seeded['invoices_size']}")

        info = machine()
        results = [("no extra index", measure(app, seeded["entity_id"], args.as_of, args.runs))]
        print_plans(results[0][1])
        if args.with_index:
            engine = create_engine(bench.url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                for name, ddl in CANDIDATE_INDEXES.items():
                    conn.execute(text(ddl))
                    conn.execute(text("VACUUM ANALYZE invoices"))
                    say(f"\ncreated candidate index ({name}): {ddl}")
                    results.append((f"+ index {name}", measure(app, seeded["entity_id"], args.as_of, args.runs)))
                    print_plans(results[-1][1])
            engine.dispose()

        say("\n== SUMMARY ==")
        say(f"machine     {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, {info['os']}, "
            f"Python {info['python']}, PostgreSQL {results[0][1]['version']}")
        say(f"data        {args.invoices:,} open invoices ({seeded['open_eur']:,} EUR, {seeded['open_usd']:,} USD), "
            f"{sum(seeded['counts'].values()) - args.invoices:,} closed, {args.customers:,} customers")
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
        say(f"load avg    {load} (1/5/15 min) at the end: other work on the machine inflates wall times")
        for title, m in results:
            say(f"-- {title}: {m['correctness']}; SQL execution (EXPLAIN ANALYZE) rows query "
                f"{m['rows_sql_ms']:.1f} ms, "
                f"credit sales query {m['sales_sql_ms']:.1f} ms, page's ranked query {m['ranked_sql_ms']:.1f} ms")
            for label, extra in (("report", "aging_report(): 2 SQL queries + key figures"),
                                 ("page", f"GET {m['urls']['page']}, {m['sizes']['page'] / 1024:,.0f} KiB"),
                                 ("partial", f"GET (HX-Request) customer with {m['largest_invoices']} open invoices, "
                                             f"{m['sizes']['partial'] / 1024:,.1f} KiB"),
                                 ("csv", f"GET {m['urls']['csv']}, {m['sizes']['csv'] / 1024:,.0f} KiB")):
                ms, runs, cpu = m[label]
                say(f"{label:8} median {ms:7.1f} ms  (min {min(runs):.1f}, max {max(runs):.1f}; {args.runs} runs; "
                    f"CPU of this process {cpu:.1f} ms)  {extra}")
        # a report that does not count exactly the open invoices has no figures to give
        return 0 if all(m["correctness"].endswith(": OK") for _title, m in results) else 1

    return on_fresh_database(args, "arbill_bench_aging", run)

if __name__ == "__main__":
    sys.exit(main())
