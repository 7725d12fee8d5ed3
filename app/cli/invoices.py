import click
from flask.cli import AppGroup
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import aliased, undefer

from app.billing.money import round_money
from app.cli.common import entity_or_fail
from app.cli.common import echo_json
from app.extensions import db
from app.audit import Actor
from app.delivery.service import delivery_condition, enqueue_resends, latest_delivery, request_bulk_resend
from app.models import Contract, Customer, Invoice

group = AppGroup("invoices", help="Invoices.")


UNDELIVERED_HELP = "only issued invoices not e-mailed after --older-than minutes (default UNDELIVERED_AFTER_MINUTES)"


@group.command("list")
@click.option("--entity", "code", required=True)
@click.option("--undelivered", is_flag=True, help=UNDELIVERED_HELP)
@click.option("--older-than", "older_than", type=click.IntRange(0, 525_600), help="minutes, with --undelivered")
@click.option("--json", "as_json", is_flag=True)
def list_(code, undelivered, older_than, as_json):
    """The invoices of a legal entity, by number (credit notes after the invoices, drafts last)."""
    entity = entity_or_fail(code)
    rows = []
    conditions = [Invoice.legal_entity_id == entity.id]
    if undelivered:
        conditions.append(delivery_condition("undelivered", older_than_minutes=older_than))
    credited = aliased(Invoice)
    for invoice, ref, customer, credits in db.session.execute(
        select(Invoice, Contract.reference, Customer.name, credited.number)
        .join(Contract, Contract.id == Invoice.contract_id).join(Customer, Customer.id == Invoice.customer_id)
        .outerjoin(credited, credited.id == Invoice.credited_invoice_id)
        .where(*conditions).options(undefer(Invoice.display_status))
        .order_by(Invoice.number.is_(None), Invoice.kind.desc(), Invoice.sequence_year, Invoice.sequence_number,
                  Invoice.id)
    ):
        money = lambda amount: str(round_money(amount, invoice.currency))  # noqa: E731
        rows.append({
            "number": invoice.number, "type": invoice.kind, "credits": credits, "contract_ref": ref,
            "customer": customer,
            "period_start": invoice.period_start.isoformat(), "period_end": invoice.period_end.isoformat(),
            "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
            "currency": invoice.currency, "net": money(invoice.net_amount), "tax": money(invoice.tax_amount),
            "total": money(invoice.total_amount), "amount_due": money(invoice.amount_due), "status": invoice.display_status,
            "creditor_reference": invoice.creditor_reference,
        })
        if undelivered:
            latest = latest_delivery(invoice.id)
            rows[-1]["delivery"] = latest.status if latest else None
            rows[-1]["delivery_error"] = latest.error if latest else None
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['number'] or '(draft)':<21} {r['contract_ref']:<12} {r['customer'][:24]:<24} "
                   f"{r['period_start']}..{r['period_end']} due {r['due_date']} {r['currency']} {r['total']:>12} {r['status']}"
                   + (f" credits {r['credits']}" if r["credits"] else ""))

@group.command("resend")
@click.option("--entity", "code", required=True)
@click.option("--undelivered", is_flag=True, required=True, help="the invoices to resend: " + UNDELIVERED_HELP[5:])
@click.option("--older-than", "older_than", type=click.IntRange(0, 525_600), help="minutes")
@click.option("--json", "as_json", is_flag=True)
def resend(code, undelivered, older_than, as_json):
    """E-mail again every issued invoice that was not e-mailed (failed, outcome unknown, never sent).

    Invoices whose delivery is still queued or being retried, and customers without an e-mail address, are
    left alone and counted."""
    entity = entity_or_fail(code)
    result = request_bulk_resend(entity.id, Actor.system("cli"), "undelivered", older_than)
    queued = True
    try:
        enqueue_resends(result.requested)
    except RedisError:
        queued = False  # recorded: the sweep enqueues them when Redis is back
    numbers = [db.session.get(Invoice, d.invoice_id).number for d in result.requested]
    if as_json:
        echo_json({"resent": numbers, "in_progress": result.in_progress, "no_email": result.no_email,
                   "queued": queued})
        return
    click.echo(f"Resending {len(numbers)} invoice(s)" + (f": {', '.join(numbers)}" if numbers else "")
               + (f"; {result.in_progress} still being sent or retried" if result.in_progress else "")
               + (f"; {result.no_email} without a customer e-mail address" if result.no_email else "") + ".")
    if not queued:
        click.echo("The job queue (Redis) is unreachable: the resends are recorded and sent when it is back.", err=True)


from app.cli.credit_notes import register as _register_credit_notes  # noqa: E402
from app.cli.documents import register as _register_documents  # noqa: E402
_register_documents(group)
_register_credit_notes(group)
