"""Read-only queries for the billing-run pages: the run list, a run's outcomes and its audit timeline.

Nothing here writes; the views page the selects by key (app/paging.py: the `*_ORDER`s) and show what these return.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, or_, select

from app.agents.registry import spec_for_key
from app.paging import Ordering, Sort, key
from app.formatting import format_money
from app.extensions import db
from app.models import AuditEntry, BillingRun, BillingRunItem, Contract, Customer, Invoice
from app.models.runs import ACTIVE_RUN_STATUSES, ITEM_STATUSES, RUN_STATUSES
from app.models.types import utcnow
from app.wording import event_words


# ------------------------------------------------------------------ runs
# A run's number counts up as runs are queued; a queued run has not started yet (NULL: first when newest first).
RUN_ORDER = Ordering((
    Sort("number", "Run", key(BillingRun.number, BillingRun.id), descending_first=True),
    Sort("started", "Started", key(BillingRun.started_at, BillingRun.id, nullable=[BillingRun.started_at]),
         descending_first=True),
), default="-number")


def runs_query(legal_entity_id: int, status: str | None = None) -> Select:
    """The entity's runs, newest first; `status` (one of RUN_STATUSES) filters, anything else is ignored."""
    query = select(BillingRun).where(BillingRun.legal_entity_id == legal_entity_id)
    if status in RUN_STATUSES:
        query = query.where(BillingRun.status == status)
    return query.order_by(BillingRun.number.desc())


def latest_run(legal_entity_id: int) -> BillingRun | None:
    return db.session.scalar(runs_query(legal_entity_id).limit(1))


def is_active(run: BillingRun) -> bool:
    """Pending or running: its pages keep polling."""
    return run.status in ACTIVE_RUN_STATUSES


def run_duration(run: BillingRun, now: datetime | None = None) -> float | None:
    """Seconds from start to end; for a running run, up to now; None before it starts."""
    if run.started_at is None:
        return None
    end = run.finished_at or (now or utcnow())
    return max(0.0, (end - run.started_at).total_seconds())


# ------------------------------------------------------------------ a run's outcomes
RUN_ITEM_ORDER = Ordering((Sort("reference", "Contract", key(Contract.reference, BillingRunItem.id)),),
                          default="reference")
# Numbered invoices in number order, then drafts (no number: NULL sorts last).
RUN_INVOICE_ORDER = Ordering((Sort("number", "Number", key(
    Invoice.sequence_year, Invoice.sequence_number, Invoice.id,
    nullable=[Invoice.sequence_year, Invoice.sequence_number])),), default="number")


def run_items_query(run_id: int, status: str | None = None) -> Select:
    """Rows of (BillingRunItem, Contract, Customer) of a run, by contract reference."""
    query = (
        select(BillingRunItem, Contract, Customer)
        .join(Contract, Contract.id == BillingRunItem.contract_id)
        .join(Customer, Customer.id == Contract.customer_id)
        .where(BillingRunItem.billing_run_id == run_id)
    )
    if status in ITEM_STATUSES:
        query = query.where(BillingRunItem.status == status)
    return query.order_by(Contract.reference, BillingRunItem.id)


def run_invoices_query(run_id: int) -> Select:
    """Rows of (Invoice, Customer) a run created, numbered ones in number order, then drafts."""
    return (
        select(Invoice, Customer)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.billing_run_id == run_id)
        .order_by(Invoice.sequence_year, Invoice.sequence_number, Invoice.id)
    )


# ------------------------------------------------------------------ the audit timeline
@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    action: str
    actor: str
    text: str


def run_timeline(run: BillingRun, locale: str = "en_US") -> list[TimelineEntry]:
    """The run's audit entries, oldest first, each phrased in words."""
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.billing_run_id == run.id).order_by(AuditEntry.at, AuditEntry.id))
    return [TimelineEntry(e.at, e.action, e.actor_label, describe(e, locale)) for e in entries]


# The audit log of a legal entity (Settings > Audit log), newest first.
AUDIT_ORDER = Ordering((Sort("at", "Time", key(AuditEntry.at, AuditEntry.id), descending_first=True),), default="-at")


def audit_log_query(legal_entity_id: int, search: str = "") -> Select:
    """The legal entity's audit entries; `search` in the action (`invoice.posted`) or who did it."""
    from app.records.customers import contains

    query = select(AuditEntry).where(AuditEntry.legal_entity_id == legal_entity_id)
    if search:
        query = query.where(or_(contains(AuditEntry.action, search), contains(AuditEntry.actor_label, search)))
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def agent_timeline(agent_name: str, entity_id: int | None, locale: str = "en_US", limit: int = 100,
                   agent_id: int | None = None) -> list[TimelineEntry]:
    """What an agent did in a legal entity, and (with `agent_id`) what was done to it — created, changed,
    enabled, runs asked for — newest first, in words (its Audit tab)."""
    by_agent = and_(AuditEntry.actor_type == "system", AuditEntry.actor_label == agent_name)
    about = and_(AuditEntry.subject_type == "agent", AuditEntry.subject_id == agent_id)
    query = select(AuditEntry).where(or_(by_agent, about) if agent_id is not None else by_agent)
    if entity_id is not None:  # (a built-in agent's configuration is organisation-wide: no legal entity)
        query = query.where(or_(AuditEntry.legal_entity_id == entity_id,
                                and_(about, AuditEntry.legal_entity_id.is_(None))))
    entries = db.session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    return [TimelineEntry(e.at, e.action, e.actor_label, describe(e, locale)) for e in entries]


def _totals(totals: dict | None, locale: str) -> str:
    return ", ".join(format_money(Decimal(amount), currency, locale)
                     for currency, amount in sorted((totals or {}).items()))


def detail_money(amount, currency: str | None, locale: str) -> str:
    """An amount of the audit's details in the entity's format (58,53 €); as stored when it is not one."""
    try:
        return format_money(Decimal(str(amount)), currency, locale)
    except (ArithmeticError, TypeError, ValueError, KeyError):  # details of older versions may lack a field
        return f"{amount} {currency or ''}".strip()


def _agent_words(action: str, d: dict, who: str) -> str | None:
    """Agent runs and changes to an agent, in words (None: not one of those)."""
    if action == "agent.run_requested":
        kind = "A test run" if d.get("trigger") == "test" else f"A run ({d.get('trigger')})"
        return f"{kind} asked for by {who} (run {d.get('agent_run_id')})"
    if action == "agent.run_finished":
        return f"Run {d.get('agent_run_id')} {d.get('status')}: {d.get('summary')}"
    if action == "agent.created":
        return f"Created by {who} from the {d.get('template')} template, {'enabled' if d.get('enabled') else 'disabled'}"
    if action in ("agent.changed", "agent.configured"):
        changed = ", ".join(d.get("changes") or {})
        version = f" (version {d.get('version')})" if d.get("version") else ""
        return f"{'Settings' if action == 'agent.configured' else 'Changed'} by {who}{version}: {changed}"
    if action in ("agent.enabled", "agent.disabled"):
        return f"{action.split('.')[1].capitalize()} by {who}"
    return None


def _agent_name(key: str | None) -> str:
    spec = spec_for_key(key or "")
    return spec.name if spec is not None else (key or "an agent")


def _plural(count: int | None, word: str) -> str:
    count = count or 0
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe(entry: AuditEntry, locale: str = "en_US") -> str:
    """One audit entry of a run in words: "Queued by admin@arbill.example (manual trigger)"."""
    d = entry.details or {}
    who = entry.actor_label
    action = entry.action
    if action == "billing_run.queued":
        text = f"Queued by {who} ({d.get('trigger', 'unknown')} trigger)"
        if d.get("as_of"):
            text += f", as of {d['as_of']}"
        if d.get("dry_run"):
            text += ", dry run"
        if d.get("retry_of_contracts") is not None:
            text += f", retrying {_plural(d['retry_of_contracts'], 'failed contract')}"
        return text
    if action == "billing_run.confirmed":
        text = (f"Confirmed by {who} after its preview: {_plural(d.get('contracts'), 'contract')}, "
                f"{_plural(d.get('invoices'), 'invoice')}")
        if d.get("totals"):
            text += f", {_totals(d['totals'], locale)}"
        text += (f"; {_plural(d.get('customers_emailed'), 'customer')} to e-mail, "
                 f"{d.get('customers_debited') or 0} to debit")
        if d.get("failed"):
            text += f"; {_plural(d['failed'], 'contract')} that cannot be billed"
        if d.get("ahead_of_time"):
            text += f"; billing {_plural(d.get('days_ahead'), 'day')} ahead of time, as asked"
        return text
    if action == "billing_run.started":
        return f"Started by {who}"
    if action == "billing_run.fanned_out":
        return (f"Split into {_plural(d.get('chunks'), 'chunk')} of up to {d.get('chunk_size')} contracts "
                "for the workers")
    if action == "billing_run.completed":
        label = "Completed with errors" if d.get("status") == "completed_with_errors" else "Completed"
        text = f"{label}: {_plural(d.get('invoices'), 'invoice')}"
        if d.get("totals"):
            text += f", {_totals(d['totals'], locale)}"
        if d.get("failed"):
            text += f"; {_plural(d['failed'], 'contract')} failed"
        if d.get("duration_s") is not None:
            text += f" (in {d['duration_s']:.1f} s)"
        return text
    if action == "billing_run.chunk_requeued":
        return f"Re-queued {d.get('contracts') or 'a chunk'}: {d.get('reason') or 'its job was gone'}"
    if action == "billing_run.job_requeued":
        return f"Re-queued the run job: {d.get('reason') or 'its job was gone'}"
    if action == "billing_run.failed":
        return f"Failed: {d.get('reason') or 'no reason given'}"
    if action == "billing_run.cancelled":
        return f"Cancelled by {who}"
    if action == "workflow.step_fired":
        return f"{_agent_name(d.get('agent'))} asked to act, because {event_words(d.get('event_type'))}"
    if action == "workflow.stopped":
        return f"Follow-up work stopped after {event_words(d.get('event_type'))}: {d.get('reason')}"
    if action == "workflow.step_requeued":
        return (f"{_agent_name(d.get('agent'))} asked again to act on {event_words(d.get('event_type'))}, "
                f"because {d.get('reason')}")
    if action == "workflow.step_failed":
        return (f"{_agent_name(d.get('agent'))} could not act on {event_words(d.get('event_type'))} after its "
                "retries: see its Audit tab")
    if action == "invoice.delivery_unknown":
        return (f"Invoice {d.get('number')}: delivery outcome unknown (its worker stopped mid-send); "
                "check with the customer, then Resend")
    if action == "invoice.resend_requeued":
        return f"Invoice {d.get('number')}: resend queued again, because {d.get('reason')}"
    if action == "bank_statement.imported":
        return (f"Statement {d.get('statement')} ({d.get('file_name') or d.get('format')}) imported by {who}: "
                f"{_plural(d.get('entries'), 'new entry').replace('entrys', 'entries')}, "
                f"{d.get('duplicate_entries', 0)} imported before")
    if action == "bank_entry.applied":
        target = d.get("invoice") or f"invoice #{d.get('invoice_id')}"
        return (f"Bank entry #{entry.subject_id}: {detail_money(d.get('amount'), d.get('currency'), locale)} applied to "
                f"{target} ({d.get('reason')})")
    if action == "bank_entry.debit_returned":
        return (f"Bank entry #{entry.subject_id}: SEPA debit {d.get('end_to_end_id')} for {d.get('invoice')} returned "
                f"({d.get('reason')}): due again")
    if action == "bank_entry.not_ours":
        return f"Bank entry #{entry.subject_id} marked as not ours by {who}: {d.get('reason')}"
    if action == "customer_credit.created":
        return (f"Over-payment of {detail_money(d.get('amount'), d.get('currency'), locale)} kept as customer credit "
                f"({d.get('reason')})")
    if action == "payment.recorded":
        return (f"Payment of {detail_money(d.get('amount'), d.get('currency'), locale)} recorded on "
                f"{d.get('number') or 'invoice #' + str(entry.subject_id)} "
                f"({d.get('source')}); {detail_money(d.get('amount_due'), d.get('currency'), locale)} still due")
    agent_words = _agent_words(action, d, who)
    if agent_words:
        return agent_words
    details = ", ".join(f"{k} {v}" for k, v in d.items())
    return f"{action.replace('_', ' ').replace('.', ': ', 1)} by {who}" + (f" ({details})" if details else "")
