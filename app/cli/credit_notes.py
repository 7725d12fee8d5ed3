"""`flask invoices credit` and `flask invoices refund-credit`: credit notes and customer credits."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.audit import Actor
from app.billing.money import round_money
from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail
from app.errors import FieldError, ValidationError
from app.extensions import db
from app.models import CustomerCredit, Invoice
from app.records import credit_notes as service
from app.records.validation import parse_date


def register(group: click.Group) -> None:
    group.add_command(credit)
    group.add_command(refund_credit)


def _document(entity, number: str) -> Invoice:
    invoice = db.session.scalar(select(Invoice).where(Invoice.legal_entity_id == entity.id, Invoice.number == number))
    if invoice is None:
        fail(f"no invoice numbered {number!r} in legal entity {entity.code}; drafts have no number and are edited "
             f"or deleted, not credited (see `flask invoices list --entity {entity.code}`)")
    return invoice


def _errors(error: ValidationError) -> str:
    return "; ".join(error.errors.values())


@click.command("credit")
@with_appcontext
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--amount", help="Credit this amount, VAT included (e.g. 10.00), shared among the invoice's VAT rates.")
@click.option("--lines", help="Credit these lines of the invoice, by their numbers (e.g. 1,2).")
@click.option("--reason", required=True, help="Why the invoice is corrected; printed on the credit note.")
@click.option("--json", "as_json", is_flag=True)
def credit(number, code, amount, lines, reason, as_json):
    """Correct an issued invoice with a credit note: all of it, chosen lines, or an amount. Prints its number."""
    entity = entity_or_fail(code)
    if amount is not None and lines is not None:
        fail("give either --amount or --lines, not both (neither: the whole invoice)")
    try:
        request = service.CreditRequest(
            reason, amount=None if amount is None else service.parse_credit_amount(amount),
            lines=None if lines is None else service.parse_line_numbers(lines))
    except FieldError as error:
        fail(f"{'--amount' if amount is not None else '--lines'}: {error}")
    invoice = _document(entity, number)
    try:
        note = service.credit_invoice(invoice, request, Actor.system("cli"))
    except ValidationError as error:
        fail(f"invoice {number}: {_errors(error)}")
    if as_json:
        credited = note.credited_invoice
        credit_row = db.session.scalar(select(CustomerCredit).where(CustomerCredit.credit_note_id == note.id))
        money = lambda value: str(round_money(value, note.currency))  # noqa: E731
        echo_json({"number": note.number, "type": "credit_note", "credits": credited.number,
                   "currency": note.currency, "net": money(note.net_amount), "tax": money(note.tax_amount),
                   "total": money(note.total_amount), "invoice_status": credited.status,
                   "invoice_amount_due": money(credited.amount_due),
                   "customer_credit": money(credit_row.amount) if credit_row else None})
        return
    click.echo(note.number)


@click.command("refund-credit")
@with_appcontext
@click.argument("credit_note")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--reference", required=True, help="How the money went back, e.g. the bank transfer's reference.")
@click.option("--date", "on", help="Day of the refund (YYYY-MM-DD); default today in the entity's time zone.")
def refund_credit(credit_note, code, reference, on):
    """Record that the customer credit left by a credit note was paid back to the customer."""
    entity = entity_or_fail(code)
    note = _document(entity, credit_note)
    credit_row = db.session.scalar(select(CustomerCredit).where(CustomerCredit.credit_note_id == note.id))
    if credit_row is None:
        fail(f"{credit_note} left no customer credit (it only reduced what was due on its invoice)")
    try:
        day = parse_date(on) if on else entity.today()
    except FieldError as error:
        fail(f"--date: {error}")
    available = round_money(credit_row.available, credit_row.currency)
    try:
        service.refund_credit(credit_row, reference, day, Actor.system("cli"))
    except ValidationError as error:
        fail(f"{credit_note}: {_errors(error)}")
    click.echo(f"Refunded {available} {credit_row.currency} of the credit from {credit_note}.")
