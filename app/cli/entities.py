import click
from flask.cli import AppGroup

from app.cli.common import echo_json, fail
from app.extensions import db
from app.records.entities import EntityInput, create_legal_entity, list_legal_entities
from app.records.validation import ValidationError

group = AppGroup("entities", help="Legal entities: the companies that bill.")


@group.command("add")
@click.option("--code", required=True, help="Short unique code, e.g. DE01.")
@click.option("--name", required=True)
@click.option("--country", required=True, help="ISO 3166 alpha-2, e.g. DE.")
@click.option("--currency", required=True, help="ISO 4217 base currency, e.g. EUR.")
@click.option("--vat-id")
@click.option("--invoice-prefix", help="Defaults to the code.")
@click.option("--timezone", "timezone_name", default="UTC", show_default=True, help="IANA zone, e.g. Europe/Berlin.")
@click.option("--locale", "locale_name", help="e.g. de_DE; defaults from the country.")
@click.option("--address-line1", help="Street and number (BT-35).")
@click.option("--address-line2")
@click.option("--postcode")
@click.option("--city")
@click.option("--subdivision", help="State, region or prefecture (BT-39).")
@click.option("--tax-number", help="Tax number from the tax office (BT-32), e.g. 181/815/08155.")
@click.option("--registration-id", help="Legal registration (BT-30): SIREN/SIRET, HRB 12345 B...")
@click.option("--contact-name", help="Contact for invoices (BT-41).")
@click.option("--contact-email", help="BT-43.")
@click.option("--contact-phone", help="BT-42.")
@click.option("--payment-terms", type=int, help="Days until due; default: the billing agent's (14).")
@click.option("--finance-email")
def add(code, name, country, currency, vat_id, invoice_prefix, timezone_name, locale_name, address_line1,
        address_line2, postcode, city, subdivision, tax_number, registration_id, contact_name, contact_email,
        contact_phone, payment_terms, finance_email):
    """Add a legal entity."""
    data = EntityInput(
        code=code, name=name, country=country, currency=currency, vat_id=vat_id,
        invoice_prefix=invoice_prefix, timezone=timezone_name, locale=locale_name,
        address_line1=address_line1, address_line2=address_line2, postcode=postcode, city=city,
        subdivision=subdivision, tax_number=tax_number, registration_id=registration_id,
        contact_name=contact_name, contact_email=contact_email, contact_phone=contact_phone,
        payment_terms_days=payment_terms, finance_email=finance_email,
    )
    try:
        entity = create_legal_entity(data)
    except ValidationError as error:
        fail(str(error))
    db.session.commit()
    click.echo(f"Created legal entity {entity.code} ({entity.name}), invoices numbered {entity.invoice_prefix}-YYYY-NNNNNN")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """List legal entities."""
    rows = [
        {"code": e.code, "name": e.name, "country": e.country, "currency": e.currency,
         "timezone": e.timezone, "invoice_prefix": e.invoice_prefix}
        for e in list_legal_entities()
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['code']:<8} {r['name']:<30} {r['country']} {r['currency']} {r['timezone']}")
