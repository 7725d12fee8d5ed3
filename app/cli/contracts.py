import click
from flask.cli import AppGroup

from app.cli.common import fail
from app.errors import ImportFailed
from app.records.importer import import_contracts

group = AppGroup("contracts", help="Recurring contracts.")


@group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False))
def import_(csv_file: str) -> None:
    """Import contracts from a CSV file: all rows or none."""
    try:
        with open(csv_file, "rb") as stream:  # read row by row: UTF-8 or Windows-1252, `,` `;` or tab
            result = import_contracts(stream)
    except FileNotFoundError:
        fail(f"{csv_file}: no such file")
    except ImportFailed as failure:
        for message in failure.errors:
            click.echo(message, err=True)
        fail(f"{csv_file}: {failure}")
    for note in result.notes:
        click.echo(f"{note}.")
    click.echo(
        f"Imported {result.contracts} contract(s) with {result.lines} line(s); "
        f"created {result.customers} customer(s)."
    )
