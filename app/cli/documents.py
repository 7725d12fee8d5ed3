"""`flask invoices pdf NUMBER --entity CODE -o FILE`: an invoice's PDF/A-3 e-invoice as a file."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.cli.billing import entity_or_fail
from app.cli.common import fail
from app.documents.facts import DocumentError
from app.documents.service import get_or_render_document
from app.extensions import db
from app.models import Invoice


def register(group: click.Group) -> None:
    """Add the `pdf` command to the `flask invoices` group."""
    group.add_command(pdf)


@click.command("pdf")
@with_appcontext
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="File to write the PDF to ('-' for standard output).")
def pdf(number, code, output):
    """Write an invoice's or credit note's PDF (PDF/A-3b with its EN 16931 e-invoice), rendering it if not stored yet."""
    entity = entity_or_fail(code)
    invoice = db.session.scalar(select(Invoice).where(Invoice.legal_entity_id == entity.id,
                                                      Invoice.number == number))
    if invoice is None:
        fail(f"no invoice numbered {number!r} in legal entity {entity.code}; drafts have no number until posted "
             f"(see `flask invoices list --entity {entity.code}`)")
    try:
        document = get_or_render_document(invoice)
    except DocumentError as error:
        fail(f"invoice {number}: {error}")
    db.session.commit()
    with click.open_file(output, "wb") as target:
        target.write(document.pdf)
    if output != "-":
        click.echo(f"Wrote {output} ({len(document.pdf):,} bytes, invoice {invoice.number}, sha256 {document.sha256[:12]}…)")
