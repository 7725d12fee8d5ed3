"""`flask sepa results FILE`: the bank's answer to a SEPA batch (CSV, pain.002 or camt.054), all or nothing.

The command is defined on its own and joins the `sepa` group of app/cli/sepa.py."""
import click

from app.audit import Actor
from app.billing.money import round_money
from app.cli.common import echo_json, fail
from app.errors import ResultImportFailed
from app.payments.bank_answers import FORMATS
from app.payments.results import import_results


@click.command("results")
@click.argument("result_file", type=click.Path(dir_okay=False))
@click.option("--format", "file_format", type=click.Choice(FORMATS),
              help="the file's format; found from the file when left out (XML namespace, else CSV)")
@click.option("--json", "as_json", is_flag=True)
def results_command(result_file: str, file_format: str | None, as_json: bool) -> None:
    """Record the bank's answers to SEPA debits from a result file: every answer or none."""
    try:
        with open(result_file, "rb") as stream:
            summary = import_results(stream, Actor.system("cli"), file_format=file_format)
    except FileNotFoundError:
        fail(f"{result_file}: no such file")
    except ResultImportFailed as failure:
        for message in failure.errors:
            click.echo(message, err=True)
        fail(f"{result_file}: {failure}")
    collected = round_money(summary.amount_collected, "EUR")  # SEPA debits are in euro
    if as_json:
        echo_json({"format": summary.file_format, "collected": summary.collected, "returned": summary.returned,
                   "accepted": summary.accepted, "amount_collected": str(collected),
                   "end_to_end_ids": summary.end_to_end_ids})
        return
    click.echo(f"Imported {summary.rows} answer(s) from a {summary.file_format}: {summary.collected} collected "
               f"({collected} EUR), {summary.returned} returned, {summary.accepted} received by the bank "
               "and not settled yet.")

