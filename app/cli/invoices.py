import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.billing.money import round_money
from app.cli.billing import entity_or_fail
from app.cli.common import echo_json
from app.extensions import db
from app.models import Contract, Customer, Invoice

group = AppGroup("invoices", help="Invoices.")


@group.command("list")
@click.option("--entity", "code", required=True)
@click.option("--json", "as_json", is_flag=True)
def list_(code, as_json):
    """The invoices of a legal entity, by number (drafts last)."""
    entity = entity_or_fail(code)
    rows = []
    for invoice, ref, customer in db.session.execute(
        select(Invoice, Contract.reference, Customer.name)
        .join(Contract, Contract.id == Invoice.contract_id).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.legal_entity_id == entity.id)
        .order_by(Invoice.number.is_(None), Invoice.sequence_year, Invoice.sequence_number, Invoice.id)
    ):
        money = lambda amount: str(round_money(amount, invoice.currency))  # noqa: E731
        rows.append({
            "number": invoice.number, "contract_ref": ref, "customer": customer,
            "period_start": invoice.period_start.isoformat(), "period_end": invoice.period_end.isoformat(),
            "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
            "currency": invoice.currency, "net": money(invoice.net_amount), "tax": money(invoice.tax_amount),
            "total": money(invoice.total_amount), "amount_due": money(invoice.amount_due), "status": invoice.status,
        })
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['number'] or '(draft)':<18} {r['contract_ref']:<12} {r['customer'][:24]:<24} "
                   f"{r['period_start']}..{r['period_end']} due {r['due_date']} {r['currency']} {r['total']:>12} {r['status']}")

from app.cli.documents import register as _register_documents  # noqa: E402
_register_documents(group)
