"""The Reconciliation Agent's event handler: `bank_statement.imported` (or Run now) → look again at the
entity's unmatched queue. A statement's own entries are applied while it is imported (app/payments/cash.py),
so the import can answer with what was matched; this catches what becomes certain later, e.g. a transfer
that arrived before its invoice was issued."""
from __future__ import annotations

from app.extensions import db
from app.models import Event, LegalEntity
from app.payments.bank_queue import rematch


def on_event(event: Event) -> str | None:
    if event.legal_entity_id is None:
        return None  # not about one legal entity: nothing to reconcile
    entity = db.session.get(LegalEntity, event.legal_entity_id)
    if entity is None:
        return None
    result = rematch(entity)
    db.session.commit()
    return f"{result.matched} matched, {result.partially_matched} partially, {result.unmatched} waiting"
