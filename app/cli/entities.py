import click
from flask.cli import AppGroup

from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail
from app.errors import ValidationError
from app.audit import Actor
from app.records.entities import (EntityInput, create_legal_entity, entity_input, list_legal_entities,
                                  update_legal_entity)

group = AppGroup("entities", help="Legal entities: the companies that bill.")


def entity_options(adding: bool):
    """The settings options `add` and `update` share (every field but the code); `add` requires some."""
    options = [
        click.option("--name", required=adding),
        click.option("--country", required=adding, help="ISO 3166 alpha-2, e.g. DE."),
        click.option("--currency", required=adding, help="ISO 4217 base currency, e.g. EUR."),
        click.option("--vat-id"),
        click.option("--invoice-prefix", help="Defaults to the code."),
        click.option("--timezone", "timezone", default="UTC" if adding else None, show_default=adding,
                     help="IANA zone, e.g. Europe/Berlin."),
        click.option("--locale", "locale", help="e.g. de_DE; defaults from the country."),
        click.option("--address-line1", help="Street and number (BT-35)."),
        click.option("--address-line2"),
        click.option("--postcode"),
        click.option("--city"),
        click.option("--subdivision", help="State, region or prefecture (BT-39)."),
        click.option("--tax-number", help="Tax number from the tax office (BT-32), e.g. 181/815/08155."),
        click.option("--registration-id", help="Legal registration (BT-30): SIREN/SIRET, HRB 12345 B..."),
        click.option("--contact-name", help="Contact for invoices (BT-41)."),
        click.option("--contact-email", help="BT-43."),
        click.option("--contact-phone", help="BT-42."),
        click.option("--payment-terms", "payment_terms_days", type=int,
                     help="Days until due; default: the billing agent's (14)."),
        click.option("--finance-email"),
        click.option("--iban", help="The entity's bank account (shown on invoices, credited by SEPA debits)."),
        click.option("--bic", help="e.g. COBADEFFXXX."),
        click.option("--sepa-creditor-id", help="Needed to collect by SEPA direct debit, e.g. DE98ZZZ09999999999."),
        click.option("--collection-lead-days",
                     help="1-30 days from closing a SEPA batch to the earliest collection date; empty: the "
                          "Payment Collection Agent's setting."),
        click.option("--late-interest-rate",
                     help="Statutory interest on payment reminders, percent per year (e.g. 9.12); empty: none."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@group.command("add")
@click.option("--code", required=True, help="Short unique code, e.g. DE01.")
@entity_options(adding=True)
def add(code, **fields):
    """Add a legal entity."""
    try:
        entity = create_legal_entity(EntityInput(code=code, **fields))
    except ValidationError as error:
        fail(str(error))
    click.echo(f"Created legal entity {entity.code} ({entity.name}), invoices numbered {entity.invoice_prefix}-YYYY-NNNNNN")


@group.command("update")
@click.argument("code")
@entity_options(adding=False)
@click.option("--json", "as_json", is_flag=True)
def update(code, as_json, **fields):
    """Change the settings of legal entity CODE: only the options given change; an empty value ('') clears one."""
    entity = entity_or_fail(code)
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        changes = update_legal_entity(entity, entity_input(entity, **given), Actor.system("cli"))
    except ValidationError as error:
        fail(str(error))
    if as_json:
        echo_json({"code": entity.code, "changes": {f: c["new"] for f, c in changes.items()}})
        return
    click.echo(f"{entity.code}: " + (", ".join(f"{f} {c['old']} → {c['new']}" for f, c in changes.items())
                                     if changes else "nothing changed"))


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """List legal entities."""
    rows = [
        {"code": e.code, "name": e.name, "country": e.country, "currency": e.currency,
         "timezone": e.timezone, "invoice_prefix": e.invoice_prefix, "iban": e.iban, "bic": e.bic,
         "sepa_creditor_id": e.sepa_creditor_id, "collection_lead_days": e.collection_lead_days,
         "late_interest_rate": e.late_interest_rate}
        for e in list_legal_entities()
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['code']:<8} {r['name']:<30} {r['country']} {r['currency']} {r['timezone']}")
