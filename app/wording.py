"""The finance team's words for what the system calls by identifiers: events (the orchestration page, the audit
trail) in one place. An identifier without words here is still shown readably ("invoice.voided" → "invoice
voided"), and the identifier itself stays available as secondary detail for whoever configures rules."""
from __future__ import annotations

EVENT_WORDS = {
    "invoice.issued": "an invoice is issued",
    "invoice.posted": "a draft invoice is posted",
    "invoice.credited": "an invoice is credited",
    "invoice.voided": "an invoice is voided",
    "invoice.delivered": "an invoice is e-mailed",
    "invoice.delivery_failed": "an invoice could not be e-mailed",
    "credit_note.issued": "a credit note is issued",
    "payment.recorded": "a payment is recorded",
    "payment.received": "a payment is received",
    "payment.reversed": "a payment is reversed",
    "payment.retry_scheduled": "a failed collection is due for another try",
    "bank_statement.imported": "a bank statement is imported",
    "billing.run_requested": "a billing run is asked for",
    "billing_run.started": "a billing run starts",
    "billing_run.completed": "a billing run completes",
    "billing_run.failed": "a billing run fails",
    "schedule.triggered": "a schedule fires",
    "manual.trigger": "someone presses Run",
}


def event_words(event_type: str | None) -> str:
    """'an invoice is issued' for 'invoice.issued'; unknown types readably ('invoice voided')."""
    if not event_type:
        return "an event"
    return EVENT_WORDS.get(event_type) or event_type.replace("_", " ").replace(".", " ")
