"""Holding reminders back: a customer on hold (paused, e.g. a payment plan, or disputed) and a disputed invoice.
Each change is audited with its actor and committed here; the customer and invoice pages and `flask dunning`
call these."""
from __future__ import annotations

from app.transactions import transactional
from app.audit import Actor, record
from app.models import Customer, Invoice
from app.models.dunning import HOLD_REASONS
from app.records.validation import FieldError, ValidationError, parse_multiline_text

NOTE_MAX = 500


def _note(note: str | None) -> str | None:
    try:
        return parse_multiline_text(note, "the note", NOTE_MAX)
    except FieldError as error:
        raise ValidationError({"note": str(error)}) from None


@transactional
def hold_customer(customer: Customer, reason: str, note: str | None, actor: Actor) -> Customer:
    """No reminders for the customer until released; reason 'paused' or 'disputed'."""
    if reason not in HOLD_REASONS:
        raise ValidationError({"reason": f"choose {' or '.join(HOLD_REASONS)}"})
    customer.dunning_hold, customer.dunning_hold_note = reason, _note(note)
    record("dunning.customer_held", "customer", customer.id, actor, legal_entity_id=customer.legal_entity_id,
           reason=reason, note=customer.dunning_hold_note)
    return customer


@transactional
def release_customer(customer: Customer, actor: Actor) -> Customer:
    """Reminders for the customer again (the next run picks up where the levels stand)."""
    was = customer.dunning_hold
    customer.dunning_hold, customer.dunning_hold_note = None, None
    record("dunning.customer_released", "customer", customer.id, actor, legal_entity_id=customer.legal_entity_id,
           was=was)
    return customer


@transactional
def set_invoice_disputed(invoice: Invoice, disputed: bool, note: str | None, actor: Actor) -> Invoice:
    """Mark an issued invoice disputed (no reminder lists it) or settled again."""
    if invoice.kind != "invoice" or invoice.number is None:
        raise ValidationError({"disputed": "only a posted invoice can be disputed"})
    invoice.disputed = disputed
    record("dunning.invoice_disputed" if disputed else "dunning.invoice_dispute_settled", "invoice", invoice.id,
           actor, legal_entity_id=invoice.legal_entity_id, note=_note(note))
    return invoice
