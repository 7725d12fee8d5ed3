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
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.billing.numbering import format_invoice_number
from app.billing.planner import InvoiceDraft
from app.billing.vat import TaxTreatment
from app.bulk import copy_rows, for_each_id, for_each_key, json_encoder, new_ids, reserve_ids, row_encoder
from app.chain.sealing import pending
from app.extensions import db
from app.models import Invoice, InvoiceLine, InvoiceSequence, LegalEntity
from app.models.types import utcnow
from app.outbox import emit_many, event_encoder, event_row


INVOICE_COLUMNS = (
    "id", "kind", "legal_entity_id", "customer_id", "contract_id", "billing_run_id", "period_start", "period_end",
    "number", "sequence_year", "sequence_number", "issue_date", "due_date", "currency", "net_amount",
    "tax_amount", "total_amount", "amount_due", "status", "created_at", "posted_at",
)
LINE_COLUMNS = ("invoice_id", "position", "description", "quantity", "unit_price", "vat_rate", "net_amount",
                "vat_category", "tax_code", "exemption_reason", "exemption_reason_code", "tax_note")


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


def effective_invoices():
    """The invoices that bill their contract period: not credit notes, not fully credited (a credited
    period is billed again). The condition of the partial unique index on (contract, period start)."""
    return (Invoice.kind == "invoice") & (Invoice.status != "credited")


def billed_period_starts(contract_ids: list[int]) -> dict[int, set[date]]:
    """Contract id → the period starts it already has (effective) invoices for."""
    billed: dict[int, set[date]] = defaultdict(set)
    for row in for_each_id(select(Invoice.period_start).where(effective_invoices()), Invoice.contract_id,
                           contract_ids):
        billed[row.key].add(row.period_start)
    return billed


def invoiced_among(drafts: Iterable[InvoiceDraft]) -> dict[int, set[date]]:
    """Contract id → the period starts, of those the drafts are for, that already have an invoice.

    One probe of the (contract, period start) unique index per draft: cheap enough to run under the lock.
    """
    taken: dict[int, set[date]] = defaultdict(set)
    keys = (Invoice.contract_id.label("contract_id"), Invoice.period_start.label("period_start"))
    for row in for_each_key(select(Invoice.id).where(effective_invoices()), keys, [(d.contract_id, d.period.start) for d in drafts]):
        taken[row.contract_id].add(row.period_start)
    return taken


def take_numbers(entity_id: int, year: int, count: int, series: str = "invoice") -> int:
    """Reserve `count` consecutive numbers of (entity, series, year); returns the first. Needs the entity
    lock. `series` is the document kind: invoices and credit notes are numbered apart."""
    session = db.session
    dialect = session.get_bind().dialect.name
    make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        make_insert(InvoiceSequence)
        .values(legal_entity_id=entity_id, series=series, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["legal_entity_id", "series", "year"])
    )
    last = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.legal_entity_id == entity_id, InvoiceSequence.series == series,
               InvoiceSequence.year == year)
        .values(last_number=InvoiceSequence.last_number + count)
        .returning(InvoiceSequence.last_number)
    ).scalar_one()
    return last - count + 1


def issued_payload(entity: EntityInfo, invoice_id: int | None, number: str | None, contract_id: int, currency: str,
                   total: Decimal) -> dict[str, Any]:
    return {"invoice_id": invoice_id, "number": number, "entity": entity.code, "contract_id": contract_id,
            "currency": currency, "total": str(total)}


@dataclass
class PreparedInvoices:
    """A chunk's invoice, line and event rows, built before the entity lock is taken.

    Only what depends on the lock is left open: the ids, the numbers and the events' payloads
    (they carry both), which `write_invoices` fills in under it.
    """

    drafts: list[InvoiceDraft]  # in numbering order: issue year, contract, period start
    ids: list[int] | None  # reserved ahead where the database allows it (bulk.reserve_ids)
    # Rows encoded for COPY (bulk.row_encoder), with those few values still open:
    invoices: list[list[Any]]  # INVOICE_COLUMNS; id, number, sequence_year, sequence_number
    lines: list[tuple[int, list[Any]]]  # (index into drafts, LINE_COLUMNS); invoice_id
    events: list[tuple[dict[str, Any], list[Any]]]  # (payload without id and number, event row); payload
    post: bool


def prepare_invoices(entity: EntityInfo, drafts: list[InvoiceDraft], *, post: bool, billing_run_id: int | None,
                     depth: int = 0) -> PreparedInvoices:
    """The rows for `write_invoices`, and their ids where they can be reserved before the lock."""
    drafts = sorted(drafts, key=lambda d: (d.issue_date.year, d.contract_id, d.period.start))
    now = utcnow()
    status, posted_at = ("issued", now) if post else ("draft", None)
    encode_invoice = row_encoder(Invoice.__table__, INVOICE_COLUMNS)
    encode_line, encode_event = row_encoder(InvoiceLine.__table__, LINE_COLUMNS), event_encoder()
    invoices, lines, events = [], [], []
    for i, d in enumerate(drafts):
        amounts = d.amounts
        invoices.append(encode_invoice((
            None, "invoice", entity.id, d.customer_id, d.contract_id, billing_run_id, d.period.start, d.period.end, None, None,
            None, d.issue_date, d.due_date, amounts.currency, amounts.net, amounts.tax, amounts.total, amounts.total,
            status, now, posted_at)))
        lines.extend((i, encode_line((None, line.position, line.description, line.quantity, line.unit_price,
                                      line.vat_rate, line.net, *_snapshot(line.treatment))))
                     for line in amounts.lines)
        if post:
            payload = issued_payload(entity, None, None, d.contract_id, amounts.currency, amounts.total)
            events.append((payload, encode_event(event_row("invoice.issued", None, legal_entity_id=entity.id,
                                                           billing_run_id=billing_run_id, depth=depth, created_at=now))))
    return PreparedInvoices(drafts, reserve_ids(Invoice.__table__, len(drafts)), invoices, lines, events, post)


def _snapshot(treatment: TaxTreatment) -> tuple:
    """The tax code as the invoice line keeps it: LINE_COLUMNS from vat_category on."""
    return treatment.category, treatment.code, treatment.reason, treatment.reason_code, treatment.note


def write_invoices(entity: EntityInfo, prepared: PreparedInvoices) -> list[WrittenInvoice]:
    """Write prepared invoices (COPY on PostgreSQL) in the current transaction; the caller holds the lock.

    Posted, each invoice gets the next number of its issue year and an `invoice.issued` event;
    otherwise it stays a draft without a number.
    """
    drafts = prepared.drafts
    if not drafts:
        return []
    ids = prepared.ids if prepared.ids is not None else new_ids(Invoice.__table__, len(drafts))
    numbers: list[str | None] = [None] * len(drafts)
    if prepared.post:
        by_year: dict[int, list[int]] = defaultdict(list)
        for i, draft in enumerate(drafts):
            by_year[draft.issue_date.year].append(i)
        for year in sorted(by_year):
            first = take_numbers(entity.id, year, len(by_year[year]))
            for seq, i in enumerate(by_year[year], start=first):
                numbers[i] = format_invoice_number(entity.invoice_prefix, year, seq)
                prepared.invoices[i][8:11] = numbers[i], year, seq
    for row, invoice_id in zip(prepared.invoices, ids):
        row[0] = invoice_id
    for i, row in prepared.lines:
        row[0] = ids[i]
    encode_json = json_encoder()
    for (payload, row), invoice_id, number in zip(prepared.events, ids, numbers):
        payload["invoice_id"], payload["number"] = invoice_id, number
        row[1] = encode_json(payload)
    copy_rows(Invoice.__table__, INVOICE_COLUMNS, prepared.invoices, encoded=True)
    copy_rows(InvoiceLine.__table__, LINE_COLUMNS, (row for _i, row in prepared.lines), encoded=True)
    emit_many([row for _payload, row in prepared.events], encoded=True)
    if prepared.post:
        pending("invoice", ids)
    return [WrittenInvoice(invoice_id, d.contract_id, d.period.start, number, d.amounts.currency, d.amounts.total)
            for invoice_id, d, number in zip(ids, drafts, numbers)]


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
