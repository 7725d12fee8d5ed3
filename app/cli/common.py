"""Helpers shared by the commands: errors as one actionable line, JSON output."""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from datetime import date, datetime
from typing import Any, NoReturn

import click

from app.records.validation import ID_MAX

# An id or a number on the command line: within PostgreSQL's integer, else click says so (exit 2).
ID = click.IntRange(1, ID_MAX)


def fail(message: str) -> NoReturn:
    """Print one line a person can act on and exit 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_default, indent=2, ensure_ascii=False))
