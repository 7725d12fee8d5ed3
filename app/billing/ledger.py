"""Writing invoices: the entity lock, gapless numbers, set-based inserts, posting drafts.

Every transaction that creates or numbers invoices of a legal entity first takes that entity's
billing lock (`lock_entity`), so such transactions run one after the other per entity: numbers
stay consecutive and a re-check of existing invoices under the lock is reliable. The unique
constraint on (contract, period start) stays the last line of defence.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.agents.events import emit_many, event_row
from app.billing.numbering import format_invoice_number
from app.bulk import copy_rows, for_each_id, for_each_key, new_ids
from app.billing.planner import InvoiceDraft
from app.extensions import db
from app.models import Invoice, InvoiceLine, InvoiceSequence, LegalEntity
from app.models.types import utcnow


INVOICE_COLUMNS = (
    "id", "legal_entity_id", "customer_id", "contract_id", "billing_run_id", "period_start", "period_end",
    "number", "sequence_year", "sequence_number", "issue_date", "due_date", "currency", "net_amount",
    "tax_amount", "total_amount", "amount_due", "status", "created_at", "posted_at",
)
LINE_COLUMNS = ("invoice_id", "position", "description", "quantity", "unit_price", "vat_rate", "net_amount")


@dataclass(frozen=True)
class EntityInfo:
    id: int
    code: str
    invoice_prefix: str


@dataclass(frozen=True)
class WrittenInvoice:
    id: int
    contract_id: int
    period_start: date
    number: str | None
    currency: str
    total: Decimal


def lock_entity(entity_id: int) -> None:
    """Take the entity's billing lock until the end of the transaction."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        # FOR NO KEY UPDATE: exclusive among billing writers, yet it lets other transactions insert rows
        # referencing the entity (their foreign-key checks take KEY SHARE), so no deadlock with them.
        session.execute(select(LegalEntity.id).where(LegalEntity.id == entity_id).with_for_update(key_share=True))
    else:  # SQLite: the first write takes the database's write lock
        session.execute(update(LegalEntity).where(LegalEntity.id == entity_id).values(code=LegalEntity.code))


def billed_period_starts(contract_ids: list[int]) -> dict[int, set[date]]:
    """Contract id → the period starts it already has invoices for."""
    billed: dict[int, set[date]] = defaultdict(set)
    for row in for_each_id(select(Invoice.period_start), Invoice.contract_id, contract_ids):
        billed[row.key].add(row.period_start)
    return billed


def invoiced_among(drafts: Iterable[InvoiceDraft]) -> dict[int, set[date]]:
    """Contract id → the period starts, of those the drafts are for, that already have an invoice.

    One probe of the (contract, period start) unique index per draft: cheap enough to run under the lock.
    """
    taken: dict[int, set[date]] = defaultdict(set)
    keys = (Invoice.contract_id.label("contract_id"), Invoice.period_start.label("period_start"))
    for row in for_each_key(select(Invoice.id), keys, [(d.contract_id, d.period.start) for d in drafts]):
        taken[row.contract_id].add(row.period_start)
    return taken


def take_numbers(entity_id: int, year: int, count: int) -> int:
    """Reserve `count` consecutive numbers of (entity, year); returns the first. Needs the entity lock."""
    session = db.session
    dialect = session.get_bind().dialect.name
    make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        make_insert(InvoiceSequence)
        .values(legal_entity_id=entity_id, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["legal_entity_id", "year"])
    )
    last = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.legal_entity_id == entity_id, InvoiceSequence.year == year)
        .values(last_number=InvoiceSequence.last_number + count)
        .returning(InvoiceSequence.last_number)
    ).scalar_one()
    return last - count + 1


def issued_payload(entity: EntityInfo, invoice_id: int, number: str, contract_id: int, currency: str,
                   total: Decimal) -> dict:
    return {"invoice_id": invoice_id, "number": number, "entity": entity.code, "contract_id": contract_id,
            "currency": currency, "total": str(total)}


def write_invoices(entity: EntityInfo, drafts: list[InvoiceDraft], *, post: bool,
                   billing_run_id: int | None, depth: int = 0) -> list[WrittenInvoice]:
    """Insert the drafts (COPY on PostgreSQL) in the current transaction; the caller holds the entity lock.

    With `post`, each invoice gets the next number of its issue year and an `invoice.issued`
    event; otherwise it stays a draft without a number.
    """
    if not drafts:
        return []
    drafts = sorted(drafts, key=lambda d: (d.issue_date.year, d.contract_id, d.period.start))
    numbers: list[tuple[int | None, int | None, str | None]] = [(None, None, None)] * len(drafts)
    if post:
        by_year: dict[int, list[int]] = defaultdict(list)
        for i, draft in enumerate(drafts):
            by_year[draft.issue_date.year].append(i)
        for year in sorted(by_year):
            first = take_numbers(entity.id, year, len(by_year[year]))
            for offset, i in enumerate(by_year[year]):
                seq = first + offset
                numbers[i] = (year, seq, format_invoice_number(entity.invoice_prefix, year, seq))
    now = utcnow()
    ids = new_ids(Invoice.__table__, len(drafts))
    status, posted_at = ("issued", now) if post else ("draft", None)
    copy_rows(Invoice.__table__, INVOICE_COLUMNS, (
        (invoice_id, entity.id, d.customer_id, d.contract_id, billing_run_id, d.period.start, d.period.end,
         number, year, seq, d.issue_date, d.due_date, d.amounts.currency, d.amounts.net, d.amounts.tax,
         d.amounts.total, d.amounts.total, status, now, posted_at)
        for invoice_id, d, (year, seq, number) in zip(ids, drafts, numbers)
    ))
    copy_rows(InvoiceLine.__table__, LINE_COLUMNS, (
        (invoice_id, line.position, line.description, line.quantity, line.unit_price, line.vat_rate, line.net)
        for invoice_id, d in zip(ids, drafts) for line in d.amounts.lines
    ))
    written = [
        WrittenInvoice(invoice_id, d.contract_id, d.period.start, number, d.amounts.currency, d.amounts.total)
        for invoice_id, d, (_y, _s, number) in zip(ids, drafts, numbers)
    ]
    if post:
        emit_many([
            event_row("invoice.issued", issued_payload(entity, w.id, w.number, w.contract_id, w.currency, w.total),
                      legal_entity_id=entity.id, billing_run_id=billing_run_id, depth=depth, created_at=now)
            for w in written
        ])
    return written


def post_drafts(entity: EntityInfo, invoice_ids: list[int]) -> list[Invoice]:
    """Number and issue draft invoices (oldest period first); the caller holds the entity lock."""
    drafts = list(db.session.scalars(
        select(Invoice)
        .where(Invoice.id.in_(invoice_ids), Invoice.status == "draft", Invoice.legal_entity_id == entity.id)
        .order_by(Invoice.issue_date, Invoice.contract_id, Invoice.period_start)
    ))
    by_year: dict[int, list[Invoice]] = defaultdict(list)
    for invoice in drafts:
        by_year[invoice.issue_date.year].append(invoice)
    now = utcnow()
    events = []
    for year in sorted(by_year):
        first = take_numbers(entity.id, year, len(by_year[year]))
        for offset, invoice in enumerate(by_year[year]):
            invoice.sequence_year, invoice.sequence_number = year, first + offset
            invoice.number = format_invoice_number(entity.invoice_prefix, year, first + offset)
            invoice.status, invoice.posted_at = "issued", now
            events.append(event_row(
                "invoice.issued",
                issued_payload(entity, invoice.id, invoice.number, invoice.contract_id, invoice.currency,
                               invoice.total_amount),
                legal_entity_id=entity.id, billing_run_id=invoice.billing_run_id,
            ))
    db.session.flush()
    emit_many(events)
    return drafts
