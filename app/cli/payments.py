"""flask payments: record a payment received, reverse one (a counter-entry with a reason), list them."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.billing.money import round_money
from app.cli.common import entity_or_fail
from app.cli.common import ID, echo_json, fail, invoice_or_fail
from app.errors import PaymentError, ValidationError
from app.extensions import db
from app.models import Invoice
from app.payments.ledger import list_payments, record_typed_payment, reverse_payment

group = AppGroup("payments", help="Payments received for invoices, and their reversals.")
CLI = Actor.system("cli")


def _answer(invoice: Invoice, summary: dict, as_json: bool, sentence: str) -> None:
    """Print the summary with the invoice's amount due and status now, as JSON or as `sentence` + them."""
    db.session.refresh(invoice)
    summary.update(amount_due=round_money(invoice.amount_due, invoice.currency), status=invoice.display_status)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{sentence}; {summary['amount_due']} {invoice.currency} still due ({summary['status']})")


@group.command("record")
@click.argument("number")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--amount", required=True, help="The amount received, e.g. 50.00 (at most what is due).")
@click.option("--date", "received_on", required=True, help="The day it was received, YYYY-MM-DD (not after today).")
@click.option("--reference", default="", help="The bank statement's text or the transfer's reference.")
@click.option("--json", "as_json", is_flag=True)
def record(number, code, amount, received_on, reference, as_json):
    """Record money received for invoice NUMBER (what the invoice page does); partial payments included."""
    invoice = invoice_or_fail(entity_or_fail(code), number)
    try:
        payment = record_typed_payment(invoice.id, amount, received_on, reference, CLI)
    except ValidationError as error:
        fail("; ".join(f"{field}: {message}" for field, message in error.errors.items()))
    amount = round_money(payment.amount, invoice.currency)
    _answer(invoice, {"payment_id": payment.id, "invoice": invoice.number, "amount": amount,
                      "currency": invoice.currency}, as_json,
            f"payment #{payment.id}: {amount} {invoice.currency} on {invoice.number}")


@group.command("reverse")
@click.argument("payment_id", type=ID)
@click.option("--reason", required=True, help="Why the payment is taken back (e.g. typed on the wrong invoice).")
@click.option("--json", "as_json", is_flag=True)
def reverse(payment_id, reason, as_json):
    """Reverse payment PAYMENT_ID by a counter-entry (the payment itself is kept): the invoice is due again."""
    try:
        reversal = reverse_payment(payment_id, reason, CLI)
    except PaymentError as error:
        fail(str(error))
    invoice = db.session.get(Invoice, reversal.invoice_id)
    amount = round_money(-reversal.amount, invoice.currency)
    _answer(invoice, {"reversal_id": reversal.id, "payment_id": payment_id, "invoice": invoice.number,
                      "amount": amount, "currency": invoice.currency}, as_json,
            f"payment #{payment_id} reversed by #{reversal.id}: {amount} {invoice.currency} due again on "
            f"{invoice.number}")


@group.command("list")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--invoice", "number", help="Only this invoice's payments.")
@click.option("--json", "as_json", is_flag=True)
def list_(code, number, as_json):
    """The entity's payments, oldest first; a reversal names the payment it reverses."""
    entity = entity_or_fail(code)
    invoice_id = invoice_or_fail(entity, number).id if number else None
    rows = [{"id": line.payment.id, "invoice": line.invoice_number,
             "amount": round_money(line.payment.amount, line.currency), "currency": line.currency,
             "received_on": line.payment.received_on, "source": line.payment.source,
             "reference": line.payment.reference, "reverses": line.payment.reverses_payment_id,
             "reversed_by": line.reversed_by.id if line.reversed_by else None}
            for line in list_payments(entity.id, invoice_id)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        note = (f" reverses #{r['reverses']}" if r["reverses"] else "") + (
            f" reversed by #{r['reversed_by']}" if r["reversed_by"] else "")
        click.echo(f"#{r['id']:<6} {r['invoice']:<21} {r['received_on'].isoformat()} {r['currency']} "
                   f"{r['amount']:>12} {r['source']:<15} {r['reference']}{note}")
