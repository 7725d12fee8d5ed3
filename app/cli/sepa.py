"""flask sepa: close the entity's open direct-debit batch into its pain.008 file, write a closed batch's file."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.audit import Actor
from app.billing.money import round_money
from app.cli.common import entity_or_fail
from app.cli.common import ID, echo_json, fail
from app.cli.sepa_results import results_command
from app.errors import BatchError
from app.extensions import db
from app.models import SepaBatch
from app.payments.sepa import close_batch, file_name

group = AppGroup("sepa", help="SEPA direct-debit batches (pain.008.001.08) and the bank's answers to them.")
group.add_command(results_command)


@group.command("close")
@click.option("--entity", "code", required=True)
@click.option("--json", "as_json", is_flag=True)
def close(code, as_json):
    """Close the entity's open batch: debits re-read, file written and validated; prints what to send."""
    entity = entity_or_fail(code)
    batch = db.session.scalar(select(SepaBatch).where(SepaBatch.legal_entity_id == entity.id,
                                                      SepaBatch.status == "open"))
    if batch is None:
        fail(f"{entity.code} has no open SEPA batch: nothing to close")
    try:
        close_batch(batch, Actor.system("cli"), entity.today())
    except BatchError as error:
        fail(str(error))
    summary = {"batch_id": batch.id, "message_id": batch.message_id, "collection_date": batch.collection_date,
               "debits": batch.item_count, "total": round_money(batch.control_sum, "EUR"), "file": file_name(batch)}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"batch #{batch.id} closed: {summary['debits']} debits, {summary['total']} EUR, collection from "
               f"{batch.collection_date.isoformat()}, message id {batch.message_id}")
    click.echo(f"write the file with: flask sepa file {batch.id} -o {file_name(batch)}")


@group.command("file")
@click.argument("batch_id", type=ID)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True))
def file_(batch_id, output):
    """Write a closed batch's pain.008 file (as closed, byte for byte) to OUTPUT."""
    batch = db.session.get(SepaBatch, batch_id)
    if batch is None:
        fail(f"no SEPA batch #{batch_id} (see Collections > Batches)")
    if batch.status != "closed" or not batch.xml:
        fail(f"batch #{batch_id} is still open: close it first with `flask sepa close --entity CODE`")
    with open(output, "wb") as handle:
        handle.write(batch.xml)
    click.echo(f"{output}: pain.008 of batch #{batch.id}, message id {batch.message_id}")
