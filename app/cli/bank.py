"""`flask bank`: bank statements in (camt.053, MT940, CSV), the unmatched queue, assigning by hand."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click
from flask.cli import AppGroup

from app.audit import Actor
from app.billing.money import round_money
from app.cli.common import entity_or_fail
from app.cli.common import ID, echo_json, fail
from app.errors import BankImportError, PaymentError, QueueError
from app.extensions import db
from app.payments.bank_queue import assign, mark_not_ours, queue_query
from app.payments.cash import import_statement
from app.banking.statements import FORMATS

group = AppGroup("bank", help="Bank statements and cash application (the Reconciliation Agent).")


@group.command("import")
@click.argument("statement_file", type=click.Path(dir_okay=False))
@click.option("--entity", "code", required=True)
@click.option("--format", "file_format", type=click.Choice(FORMATS),
              help="camt053, mt940 or csv; found from the file when left out")
@click.option("--json", "as_json", is_flag=True)
def import_(statement_file: str, code: str, file_format: str | None, as_json: bool) -> None:
    """Import a bank statement and apply its money to open invoices: all of the file or nothing."""
    entity = entity_or_fail(code)
    try:
        with open(statement_file, "rb") as stream:
            data = stream.read()
    except (FileNotFoundError, IsADirectoryError):
        fail(f"{statement_file}: no such file")
    try:
        result = import_statement(entity, data, statement_file.rsplit("/", 1)[-1], Actor.system("cli"), file_format)
    except BankImportError as error:
        for problem in error.problems:
            click.echo(problem, err=True)
        fail(f"{statement_file}: nothing was imported ({len(error.problems)} problem(s))")
    if as_json:
        echo_json(result.as_json())
        return
    for note in result.notes:
        click.echo(f"{note}.")
    if not result.entries:
        click.echo(f"Nothing new: all {result.duplicate_entries} entries were imported before "
                   f"(statement #{result.statement_id}).")
        return
    applied = ", ".join(f"{amount} {currency}" for currency, amount in sorted(result.amount_applied.items())) or "nothing"
    click.echo(f"Statement #{result.statement_id}: {result.entries} new entries ({result.duplicate_entries} imported "
               f"before); {result.matched} matched, {result.partially_matched} partially matched, {result.unmatched} "
               f"waiting in the unmatched queue, {result.returns} returned debits, {result.outgoing} outgoing; "
               f"applied {applied}.")
    if not result.reconciled:
        click.echo("The Reconciliation Agent is disabled: every credit waits in the unmatched queue.", err=True)


@group.command("unmatched")
@click.option("--entity", "code", required=True)
@click.option("--search", help="payer, IBAN, text or amount")
@click.option("--json", "as_json", is_flag=True)
def unmatched(code: str, search: str | None, as_json: bool) -> None:
    """The credits that wait for an accountant (not applied, or only in part), oldest first."""
    entity = entity_or_fail(code)
    rows = [{
        "entry_id": e.id, "booking_date": e.booking_date.isoformat(), "amount": str(round_money(e.amount, e.currency)),
        "unapplied": str(round_money(e.unapplied, e.currency)), "currency": e.currency, "status": e.status,
        "payer": e.counterparty_name, "payer_iban": e.counterparty_iban, "creditor_reference": e.creditor_reference,
        "remittance": e.remittance, "note": e.match_note,
    } for e in db.session.scalars(queue_query(entity, search))]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("Nothing waits: every credit is applied.")
    for r in rows:
        click.echo(f"#{r['entry_id']:<6} {r['booking_date']} {r['unapplied']:>12} {r['currency']} "
                   f"{(r['payer'] or '')[:28]:<28} {r['remittance'][:50]}  ({r['note'] or r['status']})")


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        fail(f"--amount {text!r} is not an amount: write it like 120.50")
    if not amount.is_finite() or amount <= 0:
        fail("--amount must be greater than zero")
    return amount


@group.command("assign")
@click.argument("entry_id", type=ID)
@click.argument("invoice_number")
@click.option("--amount", help="how much of the transfer to apply; default: as much as both allow")
@click.option("--json", "as_json", is_flag=True)
def assign_(entry_id: int, invoice_number: str, amount: str | None, as_json: bool) -> None:
    """Apply a waiting credit (or part of it) to an invoice by hand; audited."""
    try:
        payment = assign(entry_id, invoice_number, _amount(amount), Actor.system("cli"))
    except (QueueError, PaymentError) as error:
        fail(str(error))
    from app.models import BankEntry, Invoice

    entry, invoice = db.session.get(BankEntry, entry_id), db.session.get(Invoice, payment.invoice_id)
    data = {"entry_id": entry.id, "entry_status": entry.status, "payment_id": payment.id, "invoice": invoice.number,
            "amount": str(payment.amount), "currency": invoice.currency,
            "amount_due": str(round_money(invoice.amount_due, invoice.currency)), "invoice_status": invoice.status}
    if as_json:
        echo_json(data)
        return
    click.echo(f"Applied {data['amount']} {data['currency']} of bank entry #{entry.id} to {invoice.number}: "
               f"{data['amount_due']} still due; the entry is {entry.status.replace('_', ' ')}.")


@group.command("not-ours")
@click.argument("entry_id", type=ID)
@click.option("--reason", required=True, help="why this money is not a customer's payment")
def not_ours(entry_id: int, reason: str) -> None:
    """Take a waiting credit out of the queue: it is not a customer's payment (audited)."""
    try:
        mark_not_ours(entry_id, reason, Actor.system("cli"))
    except QueueError as error:
        fail(str(error))
    click.echo(f"Bank entry #{entry_id} is marked as not ours.")
