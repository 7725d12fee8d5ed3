"""What a sealed record's digest covers, read from the database: canonical JSON (sorted keys, Decimal as its
normalized text, dates and times in ISO 8601, UTC) → sha256.

- invoices and credit notes: what may never change once issued (number, dates, parties, amounts, currency,
  kind, the credited invoice, the credit reason, every line); not status, amount due, void reason or the
  timestamps of posting. Drafts are not sealed: they are sealed when they get their number.
- payments and audit entries: every column (neither is ever changed).
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select

from app.bulk import for_each_id
from app.models import AuditEntry, Invoice, InvoiceLine, Payment

# The columns an issued invoice keeps for ever; migration 0016's triggers refuse an UPDATE of any of them
# once the invoice has a number (keep both lists alike).
SEALED_INVOICE_COLUMNS = (
    "kind", "legal_entity_id", "customer_id", "contract_id", "credited_invoice_id", "period_start", "period_end",
    "number", "sequence_year", "sequence_number", "issue_date", "due_date", "currency", "net_amount",
    "tax_amount", "total_amount", "credit_reason",
)
SEALED_LINE_COLUMNS = ("position", "description", "quantity", "unit_price", "vat_rate", "net_amount",
                       "vat_category", "tax_code", "exemption_reason", "exemption_reason_code", "tax_note",
                       "credited_position")
PAYMENT_COLUMNS = tuple(c.name for c in Payment.__table__.c if c.name != "id")
AUDIT_COLUMNS = tuple(c.name for c in AuditEntry.__table__.c if c.name != "id")


class Sealed(NamedTuple):
    """A record as the chain sees it: the legal entity whose chain holds it (None: the organisation's)."""

    legal_entity_id: int | None
    digest: str


def canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def _scalar(value: Any) -> Any:
    """What json cannot write by itself, as `canonical` writes it (dicts and lists json walks in C)."""
    if isinstance(value, (Decimal, datetime, date)):
        return canonical(value)
    raise TypeError(f"cannot seal a {type(value).__name__}")


def digest_of(content: dict[str, Any]) -> str:
    """sha256 of the content's canonical JSON (sorted keys, Decimals normalized, times in UTC); the same text as
    json.dumps(canonical(content)) — json's own walk, which is several times faster than canonical's."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_scalar)
    return hashlib.sha256(text.encode()).hexdigest()


def link_hash(prev_hash: str, seq: int, kind: str, record_id: int, digest: str) -> str:
    """A chain entry's hash: its predecessor's hash, its place, the record and the record's digest."""
    return hashlib.sha256(f"{prev_hash}|{seq}|{kind}|{record_id}|{digest}".encode()).hexdigest()


def _invoices(ids: list[int]) -> dict[int, Sealed]:
    table, lines = Invoice.__table__, InvoiceLine.__table__
    by_invoice: dict[int, list[dict]] = defaultdict(list)
    # Rows are led by the id (for_each_id): the columns follow in the order asked for.
    for key, *values in for_each_id(select(*(lines.c[c] for c in SEALED_LINE_COLUMNS)), lines.c.invoice_id, ids):
        by_invoice[key].append(dict(zip(SEALED_LINE_COLUMNS, values)))
    found = {}
    for key, *values in for_each_id(select(*(table.c[c] for c in SEALED_INVOICE_COLUMNS)), table.c.id, ids):
        content = dict(zip(SEALED_INVOICE_COLUMNS, values))
        content["lines"] = sorted(by_invoice.get(key, ()), key=lambda line: line["position"])
        found[key] = Sealed(content["legal_entity_id"], digest_of(content))
    return found


def _payments(ids: list[int]) -> dict[int, Sealed]:
    table = Payment.__table__
    query = select(*(table.c[c] for c in PAYMENT_COLUMNS), Invoice.__table__.c.legal_entity_id.label("entity_id")) \
        .join(Invoice.__table__, Invoice.__table__.c.id == table.c.invoice_id)
    return {row.key: Sealed(row.entity_id, digest_of({c: row._mapping[c] for c in PAYMENT_COLUMNS}))
            for row in for_each_id(query, table.c.id, ids)}


def _audit_entries(ids: list[int]) -> dict[int, Sealed]:
    table = AuditEntry.__table__
    return {row.key: Sealed(row.legal_entity_id, digest_of({c: row._mapping[c] for c in AUDIT_COLUMNS}))
            for row in for_each_id(select(*(table.c[c] for c in AUDIT_COLUMNS)), table.c.id, ids)}


READERS = {"invoice": _invoices, "payment": _payments, "audit": _audit_entries}


def sealed_records(kind: str, ids: Iterable[int]) -> dict[int, Sealed]:
    """Record id → its chain and digest, as the database holds it now (missing ids are left out)."""
    ids = sorted(set(ids))
    return READERS[kind](ids) if ids else {}
