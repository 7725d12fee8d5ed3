"""The data of the billing-run benches (bench/billing_run.py, bench/worker_crash.py): one legal entity and N
contracts of 1-3 lines, mixed frequencies and currencies, each with 1-3 periods due as of the run's date,
seeded with COPY; what a correct run must then write is known in advance (`Seeded`)."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg

from benchlib import BenchDatabase, copy_into, set_serials

SEED_BATCH = 10_000

FREQUENCIES = (("monthly", 70), ("weekly", 10), ("quarterly", 8), ("annual", 7), ("daily", 5))
CURRENCIES = (("EUR", 75), ("USD", 15), ("JPY", 6), ("BHD", 4))
DUE_PERIODS = ((1, 60), (2, 30), (3, 10))  # 1.5 invoices per contract on average
LINE_COUNTS = ((1, 50), (2, 35), (3, 15))
VAT_RATES = ((Decimal(19), 60), (Decimal(7), 20), (Decimal(0), 10), (Decimal(20), 10))
QUANTITIES = (Decimal(1), Decimal(1), Decimal(1), Decimal(2), Decimal(5), Decimal("0.5"), Decimal("12.25"))
PLANS = ("Basic", "Team", "Business", "Enterprise", "Support", "Storage 100 GB", "Seats")
MONTH_STEPS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}
DAY_STEPS = {"daily": 1, "weekly": 7}


def weighted(rng: random.Random, table):
    values, weights = zip(*table)
    return rng.choices(values, weights)[0]



# ------------------------------------------------------------------ seeding
@dataclass
class Seeded:
    entity_id: int
    contracts: int
    customers: int
    lines: int
    expected_invoices: int
    expected_invoice_lines: int
    by_frequency: dict[str, int] = field(default_factory=dict)
    by_currency: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def contract_start(rng: random.Random, frequency: str, due: int, as_of: date) -> date:
    """A start date giving exactly `due` periods due by `as_of` (billing in advance).

    Built from the definition, not from app.billing.periods: the last due period (index due-1)
    starts in (as_of - one step, as_of]; the contract starts (due-1) steps before it. Days stay
    <= 28 so no month-end clamping is involved.
    """
    if frequency in DAY_STEPS:
        step = DAY_STEPS[frequency]
        last = as_of - timedelta(days=rng.randrange(step))
        return last - timedelta(days=(due - 1) * step)
    step = MONTH_STEPS[frequency]
    # j months before as_of's month: j == 0 needs day <= as_of.day, j == step needs day > as_of.day
    # (period `due` then starts in as_of's month after as_of), anything between takes any day.
    choices = [j for j in range(step + 1) if not (j == step and as_of.day >= 28)]
    j = rng.choice(choices)
    if j == 0:
        day = rng.randint(1, min(as_of.day, 28))
    elif j == step:
        day = rng.randint(as_of.day + 1, 28)
    else:
        day = rng.randint(1, 28)
    index = as_of.year * 12 + as_of.month - 1 - j - (due - 1) * step
    year, month = divmod(index, 12)
    return date(year, month + 1, day)


def seed(app, bench: BenchDatabase, n_contracts: int, as_of: date, rng: random.Random,
         code: str = "BENCH") -> Seeded:
    """One legal entity (through the app), customers, contracts and lines (COPY, in batches). Seeded again with
    another `code`, it adds a second entity beside the first (ids continue after theirs)."""
    from app.audit import Actor
    from app.billing.periods import due_period_count
    from app.extensions import db
    from app.records.entities import EntityInput, create_legal_entity

    started = time.perf_counter()
    with app.app_context():
        entity = create_legal_entity(EntityInput(code=code, name=f"{code.title()} Billing GmbH", country="DE",
                                                 currency="EUR", vat_id="DE136695976", payment_terms_days=14,
                                                 address_line1="Friedrichstraße 68", postcode="10117",
                                                 city="Berlin"),
                                     Actor.system("bench"))
        db.session.commit()
        entity_id = entity.id
        db.session.remove()

    n_customers = max(1, n_contracts // 2)
    now = datetime.now(UTC)
    seeded = Seeded(entity_id, n_contracts, n_customers, 0, 0, 0)
    with psycopg.connect(bench.conninfo) as conn, conn.cursor() as cur:
        first_customer, first_contract, line_id = (  # after an entity seeded before
            cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            for table in ("customers", "contracts", "contract_lines"))
        last_customer = first_customer + n_customers
        for first in range(first_customer + 1, last_customer + 1, SEED_BATCH):
            copy_into(cur, "customers", "id, legal_entity_id, name, email, payment_method, address_line1, "
                      "postcode, city, country, created_at",
                      ((cid, entity_id, f"Customer {cid:07d}", f"billing{cid}@example.com", "manual",
                        f"Hauptstraße {cid}", "10115", "Berlin", "DE", now)
                       for cid in range(first, min(first + SEED_BATCH, last_customer + 1))))
        first_line = line_id
        for first in range(first_contract + 1, first_contract + n_contracts + 1, SEED_BATCH):
            contracts, lines = [], []
            for contract_id in range(first, min(first + SEED_BATCH, first_contract + n_contracts + 1)):
                frequency = weighted(rng, FREQUENCIES)
                currency = weighted(rng, CURRENCIES)
                due = weighted(rng, DUE_PERIODS)
                start = contract_start(rng, frequency, due, as_of)
                # Self-check of the construction (cheap): the engine's own count must agree.
                assert due_period_count(start, frequency, as_of) == due, (start, frequency, due)
                terms = 30 if rng.random() < 0.2 else None
                contracts.append((contract_id, entity_id, first_customer + rng.randint(1, n_customers),
                                  f"{code}-{contract_id:07d}",
                                  "active", currency, frequency, start, None, terms, now))
                n_lines = weighted(rng, LINE_COUNTS)
                for position in range(1, n_lines + 1):
                    line_id += 1
                    if currency == "JPY":
                        price = Decimal(rng.randrange(500, 200_000))
                    elif rng.random() < 0.1:
                        price = Decimal(rng.randrange(100, 10_000_000)).scaleb(-4)
                    else:
                        price = Decimal(rng.randrange(100, 1_000_000)).scaleb(-2)
                    lines.append((line_id, contract_id, position, f"{rng.choice(PLANS)} ({frequency})",
                                  rng.choice(QUANTITIES), price, weighted(rng, VAT_RATES)))
                seeded.expected_invoices += due
                seeded.expected_invoice_lines += due * n_lines
                seeded.by_frequency[frequency] = seeded.by_frequency.get(frequency, 0) + 1
                seeded.by_currency[currency] = seeded.by_currency.get(currency, 0) + 1
            copy_into(cur, "contracts", "id, legal_entity_id, customer_id, reference, status, currency, "
                      "frequency, start_date, end_date, payment_terms_days, created_at", contracts)
            copy_into(cur, "contract_lines", "id, contract_id, position, description, quantity, unit_price, vat_rate",
                      lines)
        seeded.lines = line_id - first_line
        set_serials(cur, ("customers", "contracts", "contract_lines"))
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE customers, contracts, contract_lines")
    seeded.seconds = time.perf_counter() - started
    return seeded


def set_chunk_size(app, chunk_size: int | None) -> int:
    """The billing agent's chunk size in the bench database (its configuration, as the UI sets it)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import AgentDefinition

    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        if chunk_size is not None:
            agent.configuration = {**(agent.configuration or {}), "chunk_size": chunk_size}
            db.session.commit()
        size = int((agent.configuration or {}).get("chunk_size", 2000))
        db.session.remove()
    return size

