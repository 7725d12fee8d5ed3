"""`flask taxcodes`: a legal entity's tax codes (rate, EN 16931 VAT category, exemption reason)."""
from dataclasses import asdict

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.cli.common import echo_json, fail
from app.errors import ValidationError
from app.records import taxcodes as service
from app.records.entities import get_legal_entity_by_code

group = AppGroup("taxcodes", help="Tax codes: what a contract line is taxed with (rate, VAT category, reason).")
ACTOR = Actor.system("cli")


def _entity(code: str):
    entity = get_legal_entity_by_code(code)
    if entity is None:
        fail(f"unknown legal entity {code!r} (see `flask entities list`)")
    return entity


def _code(entity, code: str):
    found = service.get_code(entity, code)
    if found is None:
        fail(f"unknown tax code {code!r} in {entity.code} (see `flask taxcodes list --entity {entity.code}`)")
    return found


@group.command("add")
@click.option("--entity", "entity_code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--code", required=True, help="e.g. DE_RC: capital letters, digits and '_'.")
@click.option("--rate", required=True, help="Percent, e.g. 19 or 0.")
@click.option("--category", required=True, help="EN 16931 VAT category: S Z E AE K G O L M.")
@click.option("--reason", help="Exemption reason (BT-120); required for E, AE, K, G and O unless --reason-code.")
@click.option("--reason-code", help="VATEX exemption reason code (BT-121), e.g. VATEX-EU-AE.")
@click.option("--note", help="The wording printed on the invoice, e.g. \"Reverse charge\".")
def add(entity_code, code, rate, category, reason, reason_code, note):
    """Add a tax code to a legal entity."""
    entity = _entity(entity_code)
    try:
        created = service.add_code(entity, {"code": code, "rate": rate, "category": category, "reason": reason,
                                            "reason_code": reason_code, "note": note}, ACTOR)
    except ValidationError as error:
        fail(str(error))
    click.echo(f"Added tax code {created.code} to {entity.code}: {service.CodeRow.of(created).rate} %, "
               f"category {created.category}")


@group.command("list")
@click.option("--entity", "entity_code", required=True)
@click.option("--json", "as_json", is_flag=True)
def list_(entity_code, as_json):
    """List a legal entity's tax codes, retired ones last."""
    rows = [service.CodeRow.of(code) for code in service.entity_codes(_entity(entity_code))]
    if as_json:
        echo_json([asdict(row) for row in rows])
        return
    for row in rows:
        retired = "  (retired)" if row.retired else ""
        click.echo(f"{row.code:<20} {row.rate:>6} %  {row.category:<2}  {row.reason or ''}{retired}")


def _change(entity_code: str, code: str, act, done: str) -> None:
    entity = _entity(entity_code)
    try:
        act(_code(entity, code), ACTOR)
    except ValidationError as error:
        fail(str(error))
    click.echo(f"{done} tax code {code.upper()} in {entity.code}")


@group.command("retire")
@click.option("--entity", "entity_code", required=True)
@click.option("--code", required=True)
def retire(entity_code, code):
    """Retire a tax code: no new contract line may use it."""
    _change(entity_code, code, service.retire_code, "Retired")


@group.command("reactivate")
@click.option("--entity", "entity_code", required=True)
@click.option("--code", required=True)
def reactivate(entity_code, code):
    """Let new contract lines use a retired tax code again."""
    _change(entity_code, code, service.reactivate_code, "Reactivated")


@group.command("delete")
@click.option("--entity", "entity_code", required=True)
@click.option("--code", required=True)
def delete(entity_code, code):
    """Delete a tax code no line has used (a used one can only be retired)."""
    _change(entity_code, code, service.delete_code, "Deleted")
