"""Customer credits applied to new invoices by the billing run.

A credit note on a paid invoice leaves the customer a credit (`customer_credits`). The billing run
settles it into the customer's next issued invoices of the same currency, oldest credit first, as
payments of source `customer_credit`: the invoice's amount due drops, so the AR aging, the invoice
page and the collection (a SEPA debit of the rest only) all see the truth. Runs in the chunk's
transaction, under the entity's billing lock, which credit notes and refunds also take.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update

from app.audit import Actor, record
from app.billing.money import round_money
from app.extensions import db
from app.models import CustomerCredit, Invoice, Payment

AGENT = Actor.system("Billing Run Agent")


@dataclass(frozen=True)
class NewInvoice:
    id: int
    customer_id: int
    number: str
    currency: str
    total: Decimal
    issue_date: date


def open_credits(entity_id: int) -> list[CustomerCredit]:
    """The entity's customer credits with something left, oldest first."""
    return list(db.session.scalars(
        select(CustomerCredit).where(CustomerCredit.legal_entity_id == entity_id,
                                     CustomerCredit.applied_amount + CustomerCredit.refunded_amount
                                     < CustomerCredit.amount)
        .order_by(CustomerCredit.id)))


def apply_customer_credits(entity_id: int, invoices: list[NewInvoice], billing_run_id: int | None) -> int:
    """Settle open customer credits into `invoices` (just issued, amount due = total); returns how many
    invoices took some. The caller holds the entity lock."""
    if not invoices:
        return 0
    credits = open_credits(entity_id)
    if not credits:
        return 0
    by_customer: dict[tuple[int, str], list[CustomerCredit]] = defaultdict(list)
    for credit in credits:
        by_customer[(credit.customer_id, credit.currency)].append(credit)
    settled = 0
    for invoice in sorted(invoices, key=lambda i: i.id):
        due = invoice.total
        for credit in by_customer.get((invoice.customer_id, invoice.currency), ()):
            take = min(round_money(Decimal(credit.available), credit.currency), due)
            if take <= 0:
                continue
            origin = credit.origin
            credit.applied_amount = Decimal(credit.applied_amount) + take
            due -= take
            db.session.add(Payment(invoice_id=invoice.id, amount=take, received_on=invoice.issue_date,
                                   reference=origin, source="customer_credit",
                                   customer_credit_id=credit.id, recorded_by=AGENT.label))
            record("payment.recorded", "invoice", invoice.id, AGENT, legal_entity_id=entity_id,
                   billing_run_id=billing_run_id, amount=str(take), currency=invoice.currency,
                   received_on=invoice.issue_date.isoformat(), reference=origin,
                   source="customer_credit", amount_due=str(due), status="paid" if due == 0 else "issued")
            if due == 0:
                break
        if due != invoice.total:
            settled += 1
            db.session.execute(update(Invoice).where(Invoice.id == invoice.id)
                               .values(amount_due=due, status="paid" if due == 0 else "issued"))
    db.session.flush()
    return settled
