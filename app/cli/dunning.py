"""flask dunning: preview and send payment reminders; hold a customer, dispute an invoice (app/dunning)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.cli.billing import entity_or_fail
from app.cli.common import ID, echo_json, fail, invoice_or_fail
from app.dunning import holds, service
from app.extensions import db
from app.models import Customer
from app.records.validation import FieldError, ValidationError, parse_optional_date

group = AppGroup("dunning", help="Payment reminders by days past due: preview, run, holds and disputes.")
CLI = Actor.system("cli")


def _as_of(entity, as_of: str | None):
    try:
        return parse_optional_date(as_of) or entity.today()
    except FieldError as error:
        fail(f"--as-of: {error}")


@group.command("preview")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--as-of", "as_of", help="YYYY-MM-DD; default: today in the entity's time zone.")
@click.option("--json", "as_json", is_flag=True)
def preview(code, as_of, as_json):
    """Who gets which reminder level on a day, with the overdue invoices, fee, interest and total; sends nothing."""
    entity = entity_or_fail(code)
    plan = service.plan(entity, _as_of(entity, as_of))
    if as_json:
        echo_json([notice.as_dict() for notice in plan.notices])
        return
    for notice in plan.notices:
        numbers = ", ".join(f"{i.invoice.number} ({i.days_past_due} d)" for i in notice.items)
        click.echo(f"{notice.customer.name} <{notice.customer.email or '-'}>: level {notice.level}, {numbers}; "
                   f"fee {notice.fee}, interest {notice.interest}, total {notice.total} {notice.currency}"
                   + (f" — NOT SENT: {notice.problem}" if notice.problem else ""))
    for excluded in plan.excluded:
        click.echo(f"held back: {excluded.invoice.number} of {excluded.customer.name}: {excluded.reason}")
    click.echo(plan.summary())


@group.command("run")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--as-of", "as_of", help="YYYY-MM-DD, not after today; default: today in the entity's time zone.")
@click.option("--inline", is_flag=True, help="Send the e-mails in this process instead of the delivery queue.")
@click.option("--json", "as_json", is_flag=True)
def run(code, as_of, inline, as_json):
    """Write the day's reminders and send them (by the delivery queue's workers, or --inline)."""
    entity = entity_or_fail(code)
    try:
        result = service.run(entity, _as_of(entity, as_of), CLI, enqueue=not inline)
    except service.DunningRefused as refused:
        fail(str(refused))
    if inline:
        service.send_pending(result.written + result.retried)
        db.session.expire_all()
    if as_json:
        echo_json(result.as_dict())
        return
    for notice in result.written + result.retried:
        click.echo(f"{notice.customer.name} <{notice.email}>: level {notice.level}, "
                   f"{', '.join(i.invoice.number for i in notice.items)}; total {notice.total_amount} "
                   f"{notice.currency}: {notice.status}")
    click.echo(result.summary())


def _customer(entity, customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None or customer.legal_entity_id != entity.id:
        fail(f"no customer #{customer_id} in legal entity {entity.code} (see `flask customers list`)")
    return customer


def _invalid(error: ValidationError):
    fail("; ".join(f"{field}: {message}" for field, message in error.errors.items()))


@group.command("hold")
@click.argument("customer_id", type=ID)
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--reason", type=click.Choice(["paused", "disputed"]), required=True)
@click.option("--note", default="", help="Why, for the next person (e.g. payment plan until 31 March).")
def hold(customer_id, code, reason, note):
    """Send CUSTOMER_ID no reminders until released."""
    customer = _customer(entity_or_fail(code), customer_id)
    try:
        holds.hold_customer(customer, reason, note, CLI)
    except ValidationError as error:
        _invalid(error)
    click.echo(f"{customer.name}: no reminders ({reason})")


@group.command("release")
@click.argument("customer_id", type=ID)
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
def release(customer_id, code):
    """Remind CUSTOMER_ID again."""
    customer = _customer(entity_or_fail(code), customer_id)
    holds.release_customer(customer, CLI)
    click.echo(f"{customer.name}: reminded again")


@group.command("dispute")
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--settled", is_flag=True, help="The dispute is settled: remind the invoice again.")
@click.option("--note", default="", help="What the customer disputes.")
def dispute(number, code, settled, note):
    """Mark invoice NUMBER disputed (no reminder lists it), or --settled."""
    invoice = invoice_or_fail(entity_or_fail(code), number)
    try:
        holds.set_invoice_disputed(invoice, not settled, note, CLI)
    except ValidationError as error:
        _invalid(error)
    click.echo(f"{invoice.number}: {'reminded again' if settled else 'disputed, not reminded'}")
