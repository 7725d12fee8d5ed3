"""The Reconciliation Agent: `bank_statement.imported` (or its Run button, a schedule) → look again at the
entity's unmatched queue. A statement's own entries are applied while it is imported (app/payments/cash.py),
so the import can answer with what was matched; this catches what becomes certain later, e.g. a transfer
that arrived before its invoice was issued."""
from __future__ import annotations

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.extensions import db
from app.models import AgentDefinition, Event, LegalEntity
from app.payments.bank_queue import rematch


def _rematch(entity: LegalEntity) -> str:
    result = rematch(entity)
    db.session.commit()
    return f"{result.matched} matched, {result.partially_matched} partially, {result.unmatched} waiting"


def on_event(event: Event, agent: AgentDefinition | None = None) -> str | None:
    if event.legal_entity_id is None:
        return None  # not about one legal entity: nothing to reconcile
    entity = db.session.get(LegalEntity, event.legal_entity_id)
    if entity is None:
        return None
    return _rematch(entity)


def run(request: RunRequest) -> RunOutcome:
    if request.test:
        return RunOutcome("a test run changes nothing: the Reconciliation Agent would look again at the "
                          "unmatched bank entries")
    return RunOutcome(_rematch(request.entity))


SPEC = AgentSpec(
    key="reconciliation",
    name="Reconciliation Agent",
    description=(
        "Applies the money on imported bank statements (camt.053, MT940, CSV) to open invoices: by the "
        "invoice's RF creditor reference, then by an invoice number in the remittance text, then by amount and "
        "payer. A short payment leaves the rest due, an over-payment becomes customer credit, a returned SEPA "
        "debit re-opens its invoice; what is not certain waits in Records > Bank for an accountant."
    ),
    trigger_events=("bank_statement.imported", "schedule.triggered", "manual.trigger"),
    settings=(
        Setting("match_by_payer", "Match by amount and payer", "bool", True,
                "With no reference in the transfer: apply it when its amount is exactly what one open invoice of "
                "the payer (known by IBAN, or by name) is due, or all of them together."),
        Setting("overpayment_to_credit", "Over-payments become customer credit", "bool", True,
                "Money beyond what the referenced invoices are due is kept as the customer's credit (used by the "
                "next billing run); off: the rest waits in the unmatched queue."),
    ),
    queue="default",
    on_event=on_event,
    run=run,
    subscribes=("bank_statement.imported",),
    job_timeout=600,
)
