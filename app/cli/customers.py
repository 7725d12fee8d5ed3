"""flask customers: list an entity's customers, change one (its payment method and SEPA mandate included)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail
from app.errors import ValidationError
from app.models.parties import PAYMENT_METHODS
from app.records.customers import entity_customers, find_customer, form_values, update_customer

group = AppGroup("customers", help="Customers of a legal entity.")


@group.command("list")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--json", "as_json", is_flag=True)
def list_(code, as_json):
    """The entity's customers by name, with how each pays."""
    entity = entity_or_fail(code)
    rows = [{"id": c.id, "name": c.name, "email": c.email, "country": c.country, "payment_method": c.payment_method,
             "iban": c.iban, "mandate_reference": c.mandate_reference, "mandate_date": c.mandate_date}
            for c in entity_customers(entity)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name'][:40]:<40} {r['email'] or '-':<32} {r['payment_method']}"
                   + (f" {r['mandate_reference']}" if r["mandate_reference"] else ""))


@group.command("update")
@click.argument("name")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--name", "new_name", help="A new name.")
@click.option("--email")
@click.option("--address-line1")
@click.option("--address-line2")
@click.option("--postcode")
@click.option("--city")
@click.option("--subdivision")
@click.option("--country", help="ISO 3166 alpha-2, e.g. DE.")
@click.option("--vat-id")
@click.option("--buyer-reference", help="Leitweg-ID or the buyer's order reference (BT-10).")
@click.option("--payment-method", type=click.Choice(PAYMENT_METHODS))
@click.option("--iban", help="Needed for sepa_debit.")
@click.option("--mandate-reference", help="The SEPA mandate's reference; needed for sepa_debit.")
@click.option("--mandate-date", help="The day the mandate was signed, YYYY-MM-DD; needed for sepa_debit.")
@click.option("--json", "as_json", is_flag=True)
def update(name, code, new_name, as_json, **fields):
    """Change customer NAME as its page does: only the options given change; an empty value ('') clears one."""
    entity = entity_or_fail(code)
    try:
        customer = find_customer(entity, name)
        given = {field: value for field, value in {"name": new_name, **fields}.items() if value is not None}
        changes = update_customer(customer, {**form_values(customer), **given}, Actor.system("cli"))
    except ValidationError as error:
        fail(str(error))
    if as_json:
        echo_json({"id": customer.id, "name": customer.name, "changes": {f: new for f, (_old, new) in changes.items()}})
        return
    click.echo(f"{customer.name}: " + (", ".join(f"{f} {old} → {new}" for f, (old, new) in changes.items())
                                       if changes else "nothing changed"))
