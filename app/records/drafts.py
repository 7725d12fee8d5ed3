"""Draft invoices (billed with the Billing Run Agent's auto_post off): correcting their lines, or deleting them.

A draft has no number yet, so it may still change or go; once posted it is corrected only by a credit
note. Both actions take the entity's billing lock, as billing and posting do, so they never race a
run writing or posting the same contract's invoices. Services write in the caller's transaction.
"""
from __future__ import annotations

from decimal import Decimal

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.ledger import lock_entity
from app.billing.money import LineInput, compute_invoice
from app.billing.vat import document_problems
from app.errors import CurrencyError, LineError
from app.extensions import db
from app.models import Invoice, InvoiceLine, TaxCode
from app.records import validation as v
from app.records.contracts import clean_lines, line_form_values, plain_number
from app.records.taxcodes import treatment


def _locked_draft(invoice: Invoice, action: str) -> Invoice:
    lock_entity(invoice.legal_entity_id)
    db.session.refresh(invoice)  # under the lock: a run or a person may have posted it meanwhile
    if invoice.status != "draft":
        raise v.ValidationError({"status": (
            f"this invoice is {invoice.status} as {invoice.number}: only a draft can be {action}; correct an "
            "issued invoice with a credit note")})
    return invoice


def draft_form_lines(invoice: Invoice, locale: str | None = None) -> list[dict[str, str]]:
    """The draft's lines as the form shows them, in `locale` when given (2,5 × 49,00 for de_DE)."""
    return [line_form_values(line, line.tax_code or "", invoice.currency, locale) for line in invoice.lines]


@transactional
def update_draft(invoice: Invoice, lines: list[dict[str, str]], actor: Actor, locale: str | None = None) -> list[str]:
    """Replace a draft's lines (each with a tax code, as on a contract) and its totals; returns the new lines
    as the audit trail shows them. Numbers are read in `locale` when given. Raises ValidationError keyed
    `lines-N-field`, changing nothing."""
    invoice = _locked_draft(invoice, "edited")
    entity, customer = invoice.legal_entity, invoice.customer
    rows, errors = clean_lines(entity, lines, customer, locale)
    if errors:
        raise v.ValidationError(errors)
    codes = {row["tax_code_id"]: db.session.get(TaxCode, row["tax_code_id"]) for row in rows}
    inputs = [LineInput(row["description"], row["quantity"], row["unit_price"], row["vat_rate"],
                        treatment(codes[row["tax_code_id"]])) for row in rows]
    try:
        amounts = compute_invoice(inputs, invoice.currency)
    except (LineError, CurrencyError) as error:
        raise v.ValidationError({"lines": str(error)}) from None
    problems = document_problems((line.treatment for line in amounts.lines), seller_vat_id=entity.vat_id,
                                 buyer_vat_id=customer.vat_id, seller_registration_id=entity.registration_id)
    if problems:
        raise v.ValidationError({"lines": "; ".join(problems)})
    before = [_describe(line.description, line.quantity, line.unit_price, line.vat_rate, line.tax_code)
              for line in invoice.lines]
    invoice.lines.clear()
    db.session.flush()  # the old lines go first: positions are unique per invoice
    for computed in amounts.lines:
        tax = computed.treatment
        invoice.lines.append(InvoiceLine(
            position=computed.position, description=computed.description, quantity=computed.quantity,
            unit_price=computed.unit_price, vat_rate=computed.vat_rate, net_amount=computed.net,
            vat_category=tax.category, tax_code=tax.code, exemption_reason=tax.reason,
            exemption_reason_code=tax.reason_code, tax_note=tax.note))
    invoice.net_amount, invoice.tax_amount = amounts.net, amounts.tax
    invoice.total_amount = invoice.amount_due = amounts.total
    db.session.flush()
    after = [_describe(c.description, c.quantity, c.unit_price, c.vat_rate, c.treatment.code) for c in amounts.lines]
    record("invoice.draft_updated", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           contract=invoice.contract.reference, period_start=invoice.period_start.isoformat(),
           lines=[before, after], total=str(amounts.total), currency=invoice.currency)
    return after


@transactional
def delete_draft(invoice: Invoice, actor: Actor) -> None:
    """Delete a draft: its period has no invoice again, so the next billing run bills it anew (end or change
    the contract first if it should not)."""
    invoice = _locked_draft(invoice, "deleted")
    record("invoice.draft_deleted", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           contract=invoice.contract.reference, period_start=invoice.period_start.isoformat(),
           period_end=invoice.period_end.isoformat(), total=str(invoice.total_amount), currency=invoice.currency)
    db.session.delete(invoice)
    db.session.flush()


def _describe(description: str, quantity: Decimal, unit_price: Decimal, rate: Decimal, code: str | None) -> str:
    return (f"{description}: {plain_number(quantity)} × {plain_number(unit_price)} at {plain_number(rate)}%"
            + (f" ({code})" if code else ""))
