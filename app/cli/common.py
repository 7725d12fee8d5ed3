"""Helpers shared by the commands: errors as one actionable line, JSON output."""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from datetime import date, datetime
from typing import Any, NoReturn

import click

from app.records.entities import get_legal_entity_by_code
from app.records.validation import ID_MAX

# An id or a number on the command line: within PostgreSQL's integer, else click says so (exit 2).
ID = click.IntRange(1, ID_MAX)


def entity_or_fail(code: str):
    """The legal entity with this code, or a clear error naming where the codes are."""
    entity = get_legal_entity_by_code(code)
    if entity is None:
        fail(f"unknown legal entity {code!r} (see `flask entities list`)")
    return entity


def fail(message: str) -> NoReturn:
    """Print one line a person can act on and exit 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def invoice_or_fail(entity, number: str):
    """The entity's invoice or credit note numbered `number`, else exit with what to do."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Invoice

    invoice = db.session.scalar(select(Invoice).where(Invoice.legal_entity_id == entity.id,
                                                      Invoice.number == number.strip()))
    if invoice is None:
        fail(f"no invoice numbered {number!r} in legal entity {entity.code}; drafts have no number until posted "
             f"(see `flask invoices list --entity {entity.code}`)")
    return invoice


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_default, indent=2, ensure_ascii=False))
