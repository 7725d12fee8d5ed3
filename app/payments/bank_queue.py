"""The unmatched queue: the bank credits the Reconciliation Agent could not apply with certainty, and what an
accountant does with them — search, assign to an invoice (all or part), mark as not ours, ask the agent to look
again — and what the page shows of an entry. Services in the caller's transaction; callers commit."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, func, or_, select

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.ledger import lock_entity
from app.billing.money import round_money
from app.errors import QueueError
from app.extensions import db
from app.formatting import format_money
from app.models import AuditEntry, BankEntry, BankStatement, Customer, CustomerCredit, Invoice, LegalEntity, Payment
from app.models.banking import QUEUED
from app.paging import Ordering, Sort, key
from app.payments import matching
from app.reports.dashboard import waiting_bank_credits
from app.payments.cash import (AGENT, ZERO, ImportResult, _apply_to_invoice, _resolve, _settle_status, compact_iban,
                               reconcile)


# ------------------------------------------------------------------ the queue
QUEUE_ORDER = Ordering((
    Sort("booked", "Booked", key(BankEntry.booking_date, BankEntry.id)),
    Sort("amount", "Amount", key(BankEntry.amount, BankEntry.id), descending_first=True),
), default="booked")


def queue_query(entity: LegalEntity, search: str | None = None):
    """The entity's entries waiting for an accountant, oldest first; `search` in payer, text, amount."""
    query = select(BankEntry).where(BankEntry.legal_entity_id == entity.id, BankEntry.status.in_(QUEUED),
                                    BankEntry.direction == "credit")
    if search and search.strip():
        text = f"%{search.strip().lower()}%"
        conditions = [func.lower(BankEntry.remittance).like(text), func.lower(BankEntry.counterparty_name).like(text),
                      func.lower(func.coalesce(BankEntry.counterparty_iban, "")).like(text.replace(" ", "")),
                      func.lower(func.coalesce(BankEntry.creditor_reference, "")).like(text)]
        try:
            conditions.append(BankEntry.amount == Decimal(search.strip().replace(",", ".")))
        except ArithmeticError:
            pass
        query = query.where(or_(*conditions))
    return query.order_by(BankEntry.booking_date, BankEntry.id)


def entry_of(entity: LegalEntity, entry_id: int) -> BankEntry | None:
    entry = db.session.get(BankEntry, entry_id)
    return entry if entry is not None and entry.legal_entity_id == entity.id else None


def lock_entry(entry_id: int) -> BankEntry:
    query = select(BankEntry).where(BankEntry.id == entry_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    entry = db.session.scalar(query.execution_options(populate_existing=True))
    if entry is None:
        raise QueueError(f"no bank entry #{entry_id}")
    return entry


@transactional
def assign(entry_id: int, invoice_number: str, amount: Decimal | None, actor: Actor,
           entity: LegalEntity | None = None) -> Payment:
    """An accountant applies (part of) a waiting credit to an invoice: by default as much as both allow."""
    entry = lock_entry(entry_id)
    if entity is not None and entry.legal_entity_id != entity.id:
        raise QueueError(f"no bank entry #{entry_id} in {entity.code}")
    if entry.direction != "credit":
        raise QueueError(f"bank entry #{entry.id} is money out: only credits pay invoices")
    if entry.status not in QUEUED:
        raise QueueError(f"bank entry #{entry.id} is {entry.status.replace('_', ' ')}: nothing of it waits")
    invoice = db.session.scalar(select(Invoice).where(Invoice.legal_entity_id == entry.legal_entity_id,
                                                      Invoice.number == (invoice_number or "").strip()))
    if invoice is None or invoice.kind != "invoice":
        raise QueueError(f"no invoice {invoice_number!r} in this legal entity")
    if invoice.currency != entry.currency:
        raise QueueError(f"{invoice.number} is billed in {invoice.currency}; the transfer is in {entry.currency}")
    left = round_money(entry.unapplied, entry.currency)
    if amount is None:
        amount = min(left, Decimal(invoice.amount_due))
        if amount <= 0:
            raise QueueError(f"{invoice.number} has nothing left to pay ({invoice.status})")
    if amount > left:
        locale = invoice.legal_entity.locale
        raise QueueError(f"{format_money(amount, entry.currency, locale)} is more than the "
                         f"{format_money(left, entry.currency, locale)} of this transfer not applied yet")
    payment = _apply_to_invoice(entry, invoice.id, amount, "manual",
                                f"assigned to {invoice.number} by {actor.label}", actor)
    _settle_status(entry, actor)
    entry.match_note = ((entry.match_note + "; ") if entry.match_note else "") + f"assigned to {invoice.number}"
    return payment


@transactional
def mark_not_ours(entry_id: int, reason: str, actor: Actor, entity: LegalEntity | None = None) -> BankEntry:
    """An accountant says a waiting credit is not a customer's payment (e.g. a refund, a loan, a wrong transfer)."""
    entry = lock_entry(entry_id)
    if entity is not None and entry.legal_entity_id != entity.id:
        raise QueueError(f"no bank entry #{entry_id} in {entity.code}")
    if entry.status not in QUEUED:
        raise QueueError(f"bank entry #{entry.id} is {entry.status.replace('_', ' ')}: nothing of it waits")
    if Decimal(entry.applied_amount) > 0:
        raise QueueError(f"part of bank entry #{entry.id} is applied already: reverse those payments first")
    reason = (reason or "").strip()
    if not reason:
        raise QueueError("say why it is not ours (e.g. 'loan from the bank', 'sent back to the payer')")
    _resolve(entry, "not_ours", reason[:500], actor)
    record("bank_entry.not_ours", "bank_entry", entry.id, actor, legal_entity_id=entry.legal_entity_id,
           amount=str(entry.amount), currency=entry.currency, reason=reason[:500])
    return entry


@transactional
def rematch(entity: LegalEntity, actor: Actor = AGENT) -> ImportResult:
    """The agent looks again at every waiting credit (invoices issued since may now match)."""
    lock_entity(entity.id)
    waiting = list(db.session.scalars(queue_query(entity)))
    return reconcile(entity, waiting, actor=actor)


def release(entry_id: int, amount: Decimal, actor: Actor) -> None:
    """A payment applied from this entry was reversed: that money waits in the queue again."""
    entry = lock_entry(entry_id)
    entry.applied_amount = max(ZERO, Decimal(entry.applied_amount) - amount)
    entry.resolved_by = entry.resolved_at = None
    _settle_status(entry, actor)
    entry.match_note = ((entry.match_note + "; ") if entry.match_note else "") + \
        f"{format_money(amount, entry.currency, db.session.get(LegalEntity, entry.legal_entity_id).locale)} given back by a reversal"


def statements_query(entity: LegalEntity):
    return select(BankStatement).where(BankStatement.legal_entity_id == entity.id).order_by(BankStatement.id.desc())


def unmatched_total(entity: LegalEntity) -> dict[str, tuple[Decimal, int]]:
    """Currency → (what waits, how many credits): the dashboard shows the same figure."""
    return waiting_bank_credits(entity)


# ------------------------------------------------------------------ what the accountant sees of an entry
def payers(entry: BankEntry) -> set[int]:
    """The customers a credit may come from: those with its IBAN, else those with its payer's name (as the
    matcher compares names: no case, accents, punctuation or legal form)."""
    return payers_of([entry])[entry.id]


def payers_of(entries: list[BankEntry]) -> dict[int, set[int]]:
    """`payers` of each of the entries (of one legal entity) by id, in two queries for all of them: a page of the
    queue would otherwise read the customers once per row."""
    if not entries:
        return {}
    entity_id = entries[0].legal_entity_id
    ibans = {e.id: compact_iban(e.counterparty_iban) for e in entries if e.counterparty_iban}
    by_iban: dict[str, set[int]] = {}
    if ibans:
        for customer_id, iban in db.session.execute(select(Customer.id, Customer.iban).where(
                Customer.legal_entity_id == entity_id, Customer.iban.in_(set(ibans.values())))):
            by_iban.setdefault(iban, set()).add(customer_id)
    names = {e.id: matching.normalized_name(e.counterparty_name) for e in entries}
    # the longest word of each name narrows the customers in SQL; the names are compared here
    words = {max(name.split(), key=len) for e_id, name in names.items() if name and not by_iban.get(ibans.get(e_id))}
    by_name: dict[str, set[int]] = {}
    if words:
        for customer_id, customer_name in db.session.execute(select(Customer.id, Customer.name).where(
                Customer.legal_entity_id == entity_id,
                or_(*(func.lower(Customer.name).like(f"%{w}%") for w in words)))):
            by_name.setdefault(matching.normalized_name(customer_name), set()).add(customer_id)
    return {e.id: by_iban.get(ibans.get(e.id)) or (by_name.get(names[e.id], set()) if names[e.id] else set())
            for e in entries}


def page_candidates(entries: list[BankEntry], limit: int = 5) -> dict[int, list[Invoice]]:
    """`candidates` of each of the entries (of one legal entity) by id, in at most four queries for all of them:
    the payers, then the first `limit` open invoices of each payer and of each (currency, amount) asked for."""
    if not entries:
        return {}
    found = payers_of(entries)
    wanted = {e.id: (e.currency, round_money(e.unapplied, e.currency)) for e in entries}
    customers = set().union(*found.values())
    amounts = {wanted[e.id] for e in entries if not found[e.id]}
    groups = []  # (what a list of candidates is per, which invoices)
    if customers:
        groups.append(((Invoice.customer_id, Invoice.currency), Invoice.customer_id.in_(customers)))
    if amounts:
        groups.append(((Invoice.currency, Invoice.amount_due),
                       or_(*(and_(Invoice.currency == c, Invoice.amount_due == a) for c, a in amounts))))
    invoices: dict[int, Invoice] = {}  # an invoice may be both a payer's and due an amount asked for
    for group, condition in groups:
        rank = func.row_number().over(partition_by=group, order_by=(Invoice.due_date, Invoice.id)).label("rank")
        ranked = (select(Invoice.id, rank).where(Invoice.legal_entity_id == entries[0].legal_entity_id,
                                                 Invoice.kind == "invoice", Invoice.is_open, condition).subquery())
        invoices.update((i.id, i) for i in db.session.scalars(select(Invoice).join(ranked, ranked.c.id == Invoice.id)
                                                              .where(ranked.c.rank <= limit)))
    ordered = sorted(invoices.values(), key=lambda i: (i.due_date, i.id))
    return {e.id: [i for i in ordered if i.currency == e.currency and (
        i.customer_id in found[e.id] if found[e.id] else i.amount_due == wanted[e.id][1])][:limit] for e in entries}


def candidates(entry: BankEntry, limit: int = 5) -> list[Invoice]:
    """Open invoices an accountant may assign a waiting credit to, oldest due first: the payer's when the payer
    is a known customer, else any invoice due exactly what of the credit is not applied yet."""
    return page_candidates([entry], limit)[entry.id]


@dataclass
class EntryHistory:
    """Where an entry's money went and who did what with it."""
    payments: list[tuple[Payment, str]]  # (payment or its reversal, invoice number)
    credits: list[tuple[CustomerCredit, str]]  # (over-payment kept as credit, customer name)
    audit: list[AuditEntry]


def entry_history(entry: BankEntry) -> EntryHistory:
    payments = db.session.execute(
        select(Payment, Invoice.number).join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.bank_entry_id == entry.id).order_by(Payment.id)).tuples().all()
    credits = db.session.execute(
        select(CustomerCredit, Customer.name).join(Customer, Customer.id == CustomerCredit.customer_id)
        .where(CustomerCredit.bank_entry_id == entry.id)).tuples().all()
    audit = list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.subject_type == "bank_entry", AuditEntry.subject_id == entry.id)
        .order_by(AuditEntry.at, AuditEntry.id)))
    return EntryHistory(list(payments), list(credits), audit)
