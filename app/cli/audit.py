"""`flask audit`: verify a legal entity's audit chain (GoBD), and seal records written before it existed."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail

group = AppGroup("audit", help="The audit chain: verify that sealed records are unchanged.")


def _entity(code: str | None, organisation: bool):
    if bool(code) == organisation:
        fail("give --entity CODE or --organisation (the chain of audit entries without a legal entity)")
    return None if organisation else entity_or_fail(code)


@group.command("verify")
@click.option("--entity", "code", help="The legal entity's code.")
@click.option("--organisation", is_flag=True, help="The organisation's chain (user and settings events).")
@click.option("--json", "as_json", is_flag=True)
def verify_command(code: str | None, organisation: bool, as_json: bool) -> None:
    """Recompute the chain from the current rows; exit 1 naming the first record that does not match."""
    from app.chain.verifying import verify

    result = verify(_entity(code, organisation), Actor.system("cli"))
    if as_json:
        echo_json(result.as_json())
    elif result.ok:
        click.echo(f"{result.entity}: the chain holds ({result.records} records)")
    else:
        b = result.first_broken
        click.echo(f"{result.entity}: BROKEN at {b.kind} #{b.id}" + (f" (entry {b.seq})" if b.seq else "")
                   + f": {b.reason}; {result.records} records verified before it")
    sys.exit(0 if result.ok else 1)


@group.command("seal")
@click.option("--entity", "code", help="Only this legal entity's records (default: all, and the organisation's).")
def seal_command(code: str | None) -> None:
    """Chain the records no chain holds yet (those written before the audit chain existed)."""
    from app.chain.sealing import seal_unsealed

    entity = entity_or_fail(code) if code else None
    count = seal_unsealed(entity.id if entity else None, every_entity=entity is None)
    click.echo(f"Sealed {count} records")
