"""`flask invoices pdf NUMBER --entity CODE -o FILE`: an invoice's PDF/A-3 e-invoice as a file;
`flask invoices validate NUMBER --entity CODE [--json]`: its e-invoice checked against EN 16931."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail, invoice_or_fail
from app.documents.service import document_for_download, stored_document
from app.errors import DocumentError
from app.models import Invoice


def register(group: click.Group) -> None:
    """Add the `pdf` and `validate` commands to the `flask invoices` group."""
    group.add_command(pdf)
    group.add_command(validate)


@click.command("pdf")
@with_appcontext
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="File to write the PDF to ('-' for standard output).")
def pdf(number, code, output):
    """Write an invoice's or credit note's PDF (PDF/A-3b with its EN 16931 e-invoice), rendering it if not stored yet."""
    invoice = _invoice_or_fail(number, code)
    try:
        document = document_for_download(invoice)
    except DocumentError as error:
        fail(f"{_kind(invoice)} {number}: {error}")
    with click.open_file(output, "wb") as target:
        target.write(document.pdf)
    if output != "-":
        click.echo(f"Wrote {output} ({len(document.pdf):,} bytes, {_kind(invoice)} {invoice.number}, sha256 {document.sha256[:12]}…)")


def _kind(invoice: Invoice) -> str:
    return "credit note" if invoice.kind == "credit_note" else "invoice"


def _invoice_or_fail(number: str, code: str) -> Invoice:
    return invoice_or_fail(entity_or_fail(code), number)


@click.command("validate")
@with_appcontext
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def validate(number, code, as_json):
    """Check an invoice's e-invoice XML against the Factur-X EN 16931 XSD and schematron; exit 1 on a fatal finding.

    The stored document's XML when there is one, else the XML the invoice would get (nothing is stored).
    """
    from app.documents.einvoice import build_cii_xml
    from app.documents.validation import schematron_version, validate_einvoice

    invoice = _invoice_or_fail(number, code)
    document = stored_document(invoice.id)
    try:
        xml, source = (document.xml, "stored") if document is not None else (build_cii_xml(invoice), "built")
        findings = validate_einvoice(xml)
    except DocumentError as error:
        fail(f"{_kind(invoice)} {number}: {error}")
    fatal = [finding for finding in findings if finding.fatal]
    if as_json:
        echo_json({"number": invoice.number, "xml": source, "schematron": f"Factur-X EN 16931 {schematron_version()}",
                   "valid": not fatal, "findings": [finding.as_dict() for finding in findings]})
    else:
        click.echo(f"{_kind(invoice).capitalize()} {invoice.number} ({source} XML) against the Factur-X EN 16931 XSD and schematron "
                   f"{schematron_version()}: {len(fatal)} fatal, {len(findings) - len(fatal)} warning(s)")
        for finding in findings:
            click.echo(f"  {finding.flag:<7} {finding.rule}: {finding.text}")
            if finding.location:
                click.echo(f"          at {finding.location}")
    if fatal:
        sys.exit(1)
