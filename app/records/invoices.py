"""Invoices: posting drafts, their status history, VAT summary and lists (credit notes: credit_notes.py).

Posting takes the entity's billing lock first and numbers through the ledger, so numbers stay
gapless per entity and year. Each action is a unit of work (app/transactions.py: it commits, or
rolls back on an error) and audits with its actor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterator, Mapping

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import selectinload, undefer

from app.audit import Actor, audit_row, record_many
from app.billing.ledger import EntityInfo, lock_entity, post_drafts
from app.billing.money import VatSubtotal, compute_invoice, round_money
from app.billing.queries import detail_money
from app.billing.status import is_open_invoice
from app.delivery.service import DELIVERY_FILTERS, delivery_condition
from app.documents.facts import line_inputs
from app.extensions import db
from app.models import (AuditEntry, BillingRun, Collection, Contract, Customer, Invoice, InvoiceDelivery,
                        InvoiceDocument)
from app.models.invoices import DOCUMENT_KINDS
from app.models.payments import PARTIALLY_PAID, SHOWN_STATUSES
from app.models.parties import LegalEntity
from app.paging import Ordering, Sort, key
from app.payments.ledger import list_payments
from app.records import validation as v
from app.queues import relay_soon
from app.reports.dashboard import overdue_condition
from app.transactions import after_commit, transactional


# ------------------------------------------------------------------ actions
@transactional
def post_invoices(entity: LegalEntity, invoice_ids: list[int], actor: Actor) -> list[Invoice]:
    """Drafts → issued with the entity's next numbers (gapless per entity and year, oldest issue date
    first), under one take of the entity's billing lock however many there are; each audited. The ids that
    are not drafts of `entity` when the lock is held (posted meanwhile, deleted, another entity's) are left
    alone: the posted invoices are returned, and the caller compares."""
    lock_entity(entity.id)
    db.session.expire_all()  # under the lock: what was read before may have been posted meanwhile
    posted = post_drafts(EntityInfo(entity.id, entity.code, entity.invoice_prefix), invoice_ids)
    record_many([audit_row("invoice.posted", "invoice", invoice.id, actor, legal_entity_id=entity.id,
                           billing_run_id=invoice.billing_run_id, number=invoice.number,
                           total=str(_round(invoice.total_amount, invoice)), currency=invoice.currency)
                 for invoice in posted])
    if posted:
        after_commit(relay_soon)  # their e-mails and debits go out within moments, not at the next minute's relay
    return posted


@transactional
def post_invoice(invoice: Invoice, actor: Actor) -> Invoice:
    """Draft → issued with the entity's next number (post_invoices for one)."""
    if not post_invoices(invoice.legal_entity, [invoice.id], actor):
        db.session.refresh(invoice)
        shown = f" as {invoice.number}" if invoice.number else ""
        raise v.ValidationError(
            {"status": f"this invoice is {invoice.status}{shown} already: only a draft can be posted"})
    return invoice


def _round(amount: Decimal, invoice: Invoice) -> Decimal:
    return round_money(Decimal(amount), invoice.currency)


# ------------------------------------------------------------------ reading one invoice
def vat_summary(invoice: Invoice) -> tuple[VatSubtotal, ...]:
    """Taxable amount and VAT per category and rate, computed as billing computes them (EN 16931, half-up per rate)."""
    if not invoice.lines:
        return ()
    return compute_invoice(line_inputs(invoice), invoice.currency).vat


@dataclass
class HistoryEntry:
    at: datetime | None
    status: str
    text: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)


_ACTION_STATUS = {"invoice.posted": "issued", "invoice.voided": "void", "invoice.paid": "paid",
                  "credit_note.issued": "issued"}


def invoice_history(invoice: Invoice) -> list[HistoryEntry]:
    """The invoice's status history, oldest first: created (by run #N), posted, voided, …"""
    run = db.session.get(BillingRun, invoice.billing_run_id) if invoice.billing_run_id else None
    by = f"billing run #{run.number}" if run else "billing"
    who = run.actor_label if run else "system"
    entries = [] if invoice.kind == "credit_note" else [
        HistoryEntry(invoice.created_at, "draft", f"created as a draft by {by}", who)]
    audit = list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.subject_type == "invoice", AuditEntry.subject_id == invoice.id)
        .order_by(AuditEntry.at, AuditEntry.id)))
    if invoice.kind == "invoice" and invoice.posted_at and not any(a.action == "invoice.posted" for a in audit):
        # Posted by the run itself (the billing agent's auto_post).
        entries[0] = HistoryEntry(invoice.created_at, "issued", f"created and posted as {invoice.number} by {by}", who)
    locale = invoice.legal_entity.locale

    def money(details: dict) -> str:  # as the audit wrote it: amount and currency
        return detail_money(details.get("amount"), details.get("currency"), locale)

    for entry in audit:
        details = dict(entry.details or {})
        if entry.action == "invoice.posted":
            text = f"posted as {details.get('number')}"
        elif entry.action == "invoice.voided":  # before credit notes existed
            text = f"voided: {details.get('reason')}"
        elif entry.action == "invoice.credited":
            text = (f"credited by {details.get('credit_note')} ({money(details)}): "
                    f"{details.get('reason')}")
        elif entry.action == "credit_note.issued":
            text = f"issued as {details.get('number')}, crediting invoice {details.get('credits')}: {details.get('reason')}"
        elif entry.action == "customer_credit.refunded":
            text = f"customer credit of {money(details)} refunded ({details.get('reference')})"
        elif entry.action == "payment.recorded" and details.get("source") == "customer_credit":
            text = f"settled {money(details)} from the customer's credit ({details.get('reference')})"
        elif entry.action == "invoice.draft_updated":
            text = f"draft corrected: {'; '.join(details.get('lines', [[], []])[1])} (total {details.get('total')})"
        elif entry.action == "invoice.delivered":
            text = f"e-mailed to {details.get('recipient')}"
        elif entry.action in ("invoice.delivery_failed", "invoice.delivery_retrying"):
            text = f"{'delivery failed' if entry.action.endswith('failed') else 'delivery will be retried'}: {details.get('reason')}"
        elif entry.action == "invoice.delivery_unknown":
            text = f"delivery outcome unknown: {details.get('reason')}"
        elif entry.action == "invoice.resend_requeued":
            text = f"resend queued again: {details.get('reason')}"
        elif entry.action == "payment.recorded":
            text = f"payment of {money(details)} received {details.get('received_on')}"
        elif entry.action == "payment.reversed":
            text = (f"payment of {money(details)} received {details.get('received_on')} "
                    f"reversed: {details.get('reason')}")
        elif entry.action == "dunning.invoice_reminded":
            text = f"payment reminder, level {details.get('level')} ({details.get('days_past_due')} days past due)"
        elif entry.action == "dunning.invoice_disputed":
            text = "marked disputed: no reminders" + (f" ({details['note']})" if details.get("note") else "")
        elif entry.action == "dunning.invoice_dispute_settled":
            text = "dispute settled: reminded again when overdue"
        elif entry.action.startswith("collection."):
            text = f"collection {entry.action.split('.', 1)[1].replace('_', ' ')}: " + str(
                details.get("message") or details.get("reason") or details.get("retry_on") or "")
        else:
            text = entry.action.replace("invoice.", "").replace("_", " ")
        status = _ACTION_STATUS.get(entry.action, "")
        if entry.action in ("payment.recorded", "invoice.credited") and details.get("status") in ("paid", "credited"):
            status = details["status"]
        if entry.action == "payment.reversed" and details.get("status_before") != details.get("status"):
            status = details["status"]  # a paid invoice is issued again
        entries.append(HistoryEntry(entry.at, status, text, entry.actor_label, details))
    return entries


def billing_run_of(invoice: Invoice) -> BillingRun | None:
    return db.session.get(BillingRun, invoice.billing_run_id) if invoice.billing_run_id else None


# ------------------------------------------------------------------ lists
@dataclass
class InvoiceFilters:
    status: str | None = None
    kind: str | None = None  # "invoice" or "credit_note"; both when None
    customer_id: int | None = None
    overdue: bool = False
    period_from: date | None = None
    period_to: date | None = None
    # "undelivered", "unknown" or "failed": issued, not e-mailed after UNDELIVERED_AFTER_MINUTES
    delivery: str | None = None
    # A selection on the list (`invoice=` ids ticked, `selected=1`): exactly those invoices, whatever the
    # other filters say (they are how the rows were found). `all=1` means every invoice the filters match.
    ids: tuple[int, ...] | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, str], locale: str | None = None) -> "InvoiceFilters":
        """Filters from a query string; a bad value is ignored and explained in `errors`. Dates are YYYY-MM-DD, and
        with `locale` (the page's) also the locale's order (31.03.2026 for de_DE)."""
        filters = cls()
        status = (args.get("status") or "").strip()
        filters.status = status if status in SHOWN_STATUSES else None
        kind = (args.get("type") or "").strip()
        filters.kind = kind if kind in DOCUMENT_KINDS else None
        if (args.get("customer") or "").strip():
            try:
                filters.customer_id = v.parse_id(args.get("customer"), "customer")
            except v.FieldError as error:
                filters.errors["customer"] = str(error)
        filters.overdue = (args.get("overdue") or "") in {"1", "on", "true", "yes"}
        delivery = (args.get("delivery") or "").strip()
        filters.delivery = delivery if delivery in DELIVERY_FILTERS else None
        for name in ("period_from", "period_to"):
            try:
                setattr(filters, name, v.parse_optional_date(args.get(name), locale))
            except v.FieldError as error:
                filters.errors[name] = str(error)
        filters._read_selection(args)
        return filters

    def _read_selection(self, args: Mapping[str, str]) -> None:
        if (args.get("all") or "") in {"1", "on", "true", "yes"}:
            return
        raw = args.getlist("invoice") if hasattr(args, "getlist") else [args["invoice"]] if "invoice" in args else []
        if not raw and not args.get("selected"):
            return
        try:
            self.ids = tuple(dict.fromkeys(v.parse_id(value, "invoice") for value in raw))
        except v.FieldError as error:
            self.ids, self.errors["invoice"] = (), str(error)
            return
        if not self.ids:
            self.errors["invoice"] = "no invoice is selected: tick invoices, or all that match the filters"

    @property
    def is_selection(self) -> bool:
        return self.ids is not None

    def query_args(self) -> list[tuple[str, str]]:
        """The selection (or all matching the filters) as query arguments, to carry through a confirm step."""
        if self.ids is not None:
            return [("selected", "1"), *(("invoice", str(i)) for i in self.ids)]
        return [("all", "1"), *self.filter_args()]

    def filter_args(self) -> list[tuple[str, str]]:
        """The filters (not a selection) as query arguments."""
        pairs = [("status", self.status), ("type", self.kind), ("customer", self.customer_id),
                 ("overdue", "1" if self.overdue else None), ("delivery", self.delivery),
                 ("period_from", self.period_from and self.period_from.isoformat()),
                 ("period_to", self.period_to and self.period_to.isoformat())]
        return [(name, str(value)) for name, value in pairs if value]


def _conditions(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> list:
    conditions = [Invoice.legal_entity_id == entity.id]
    if filters.ids is not None:  # a selection: exactly those (of this entity)
        return [*conditions, Invoice.id.in_(filters.ids or (0,))]
    if filters.status in ("issued", PARTIALLY_PAID):  # as shown: an issued invoice paid in part is partially paid
        conditions.append(Invoice.display_status == filters.status)
    elif filters.status:
        conditions.append(Invoice.status == filters.status)
    if filters.kind:
        conditions.append(Invoice.kind == filters.kind)
    if filters.customer_id:
        conditions.append(Invoice.customer_id == filters.customer_id)
    if filters.overdue:  # the dashboard's rule: open, something due, due date passed
        today = today or entity.today()
        conditions.append(overdue_condition(today))
    if filters.period_from:
        conditions.append(Invoice.period_start >= filters.period_from)
    if filters.period_to:
        conditions.append(Invoice.period_start <= filters.period_to)
    if filters.delivery:
        conditions.append(delivery_condition(filters.delivery))
    return conditions


# The orders of the invoice list (app/paging.py), each ending with the id. Status is the stored one: an issued
# invoice paid in part (shown "partially paid") sorts with the issued ones. Customer names are unique per entity.
INVOICE_ORDER = Ordering((
    Sort("period", "Period", key(Invoice.period_start, Invoice.id), descending_first=True),
    Sort("number", "Number", key(Invoice.number, Invoice.id, nullable=[Invoice.number])),
    Sort("customer", "Customer", key(Customer.name, Invoice.id)),
    Sort("issued", "Issued", key(Invoice.issue_date, Invoice.id), descending_first=True),
    Sort("due", "Due", key(Invoice.due_date, Invoice.id)),
    Sort("total", "Total", key(Invoice.total_amount, Invoice.id), descending_first=True),
    Sort("status", "Status", key(Invoice.status, Invoice.id)),
), default="-period")


def invoice_count_query(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> Select:
    """The ids of the invoices matching `filters`, for counting them (no join, no order)."""
    return select(Invoice.id).where(*_conditions(entity, filters, today))


def invoice_query(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> Select:
    """The entity's invoices matching `filters`, newest period first."""
    # The customer's entity is said too (it is the invoice's): sorted by customer, PostgreSQL then walks the
    # customers by name (their unique index) and each one's invoices, instead of sorting every invoice.
    return (select(Invoice).join(Customer, Invoice.customer_id == Customer.id)
            .where(*_conditions(entity, filters, today), Customer.legal_entity_id == entity.id)
            .options(selectinload(Invoice.customer), selectinload(Invoice.contract), undefer(Invoice.display_status))
            .order_by(Invoice.period_start.desc(), Invoice.id.desc()))


@dataclass
class CurrencyTotal:
    currency: str
    count: int
    total: Decimal
    amount_due: Decimal


def invoice_totals(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> list[CurrencyTotal]:
    """Count, total and amount due per currency of every invoice matching `filters` (SQL SUM); credit
    notes count negative in the total (they reduce what was invoiced), and drafts are never due (nothing is
    owed on a document the customer has not received)."""
    signed = case((Invoice.kind == "credit_note", -Invoice.total_amount), else_=Invoice.total_amount)
    owed = case((Invoice.status == "draft", 0), else_=Invoice.amount_due)
    rows = db.session.execute(
        select(Invoice.currency, func.count(), func.coalesce(func.sum(signed), 0),
               func.coalesce(func.sum(owed), 0))
        .where(*_conditions(entity, filters, today)).group_by(Invoice.currency).order_by(Invoice.currency))
    return [CurrencyTotal(c, n, round_money(Decimal(t), c), round_money(Decimal(d), c)) for c, n, t, d in rows]


EXPORT_HEADER = ("Number", "Type", "Customer", "Contract", "Period start", "Period end", "Issue date", "Due date",
                 "Status", "Overdue", "Currency", "Net", "VAT", "Total", "Amount due")
_KIND_NAMES = {"invoice": "Invoice", "credit_note": "Credit note"}


def invoice_export_rows(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None,
                        batch: int = 1000) -> Iterator[tuple]:
    """The invoices the list shows with `filters` (every page), in its order, as typed cells for the CSV
    export (EXPORT_HEADER): amounts at the currency's minor unit. Read `batch` rows at a time (a server-side
    cursor on PostgreSQL), so an export of any length streams."""
    today = today or entity.today()
    query = (select(Invoice.number, Invoice.kind, Customer.name, Contract.reference, Invoice.period_start,
                    Invoice.period_end, Invoice.issue_date, Invoice.due_date, Invoice.display_status, Invoice.status,
                    Invoice.currency, Invoice.net_amount, Invoice.tax_amount, Invoice.total_amount, Invoice.amount_due)
             .join(Customer, Invoice.customer_id == Customer.id)
             .outerjoin(Contract, Invoice.contract_id == Contract.id)
             .where(*_conditions(entity, filters, today))
             .order_by(Invoice.period_start.desc(), Invoice.id.desc())
             .execution_options(yield_per=batch))
    for (number, kind, customer, contract, start, end, issued, due, shown, status, currency, net, vat, total,
         amount_due) in db.session.execute(query):
        overdue = is_open_invoice(status, amount_due) and due < today
        yield (number or "", _KIND_NAMES.get(kind, kind), customer, contract or "", start, end, issued, due,
               shown.replace("_", " "), overdue, currency, *(round_money(Decimal(a), currency)
                                                             for a in (net, vat, total, amount_due)))


def export_filename(entity: LegalEntity, today: date) -> str:
    return f"invoices-{entity.code}-{today.isoformat()}.csv"


def is_overdue(invoice: Invoice, today: date) -> bool:
    return invoice.is_open and invoice.due_date < today


@dataclass
class DeliveryAndPayment:
    deliveries: list
    collection: object | None
    payments: list  # PaymentLine: each reversal right after the payment it reverses
    # the stored document's EN 16931 warnings ([] when none; None when no document or made before the checks)
    document_findings: list | None = None


def delivery_and_payment(invoice: Invoice) -> DeliveryAndPayment:
    """What the invoice page shows under "Delivery and payment": e-mails sent, collection, payments."""
    deliveries = list(db.session.scalars(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice.id)
                                         .order_by(InvoiceDelivery.id.desc())))
    collection = db.session.scalar(select(Collection).where(Collection.invoice_id == invoice.id))
    payments = list_payments(invoice.legal_entity_id, invoice.id)
    findings = db.session.scalar(select(InvoiceDocument.findings).where(InvoiceDocument.invoice_id == invoice.id))
    return DeliveryAndPayment(deliveries, collection, payments, findings)
