"""Credit notes: an issued invoice is corrected by a credit note, never by changing its status.

A credit note (UNTDID 1001 code 381) credits the whole invoice, chosen lines of it, or an amount
(VAT included, shared among its VAT rates). It states positive amounts, is numbered gapless in the
entity's credit-note series (`{prefix}-CN-{year}-{seq}`) under the entity's billing lock, and is
issued at once (never a draft). It reduces the invoice's amount due; what exceeds it (the invoice
was paid) becomes a customer credit that the next billing run applies or an accountant refunds. A
fully credited invoice becomes `credited` and no longer bills its period, so the next run bills the
period again. A pending SEPA debit of the invoice that is not yet presented drops out, or shrinks.

Each action is a unit of work (app/transactions.py) and audited with the actor.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.crediting import credit_lines_for_amount
from app.billing.ledger import lock_entity, take_numbers
from app.billing.money import InvoiceAmounts, LineInput, compute_invoice, minor_unit, round_money
from app.billing.numbering import format_credit_note_number
from app.documents.facts import line_inputs
from app.errors import CreditSplitError
from app.extensions import db
from app.formatting import format_money
from app.models import CustomerCredit, Invoice, InvoiceLine
from app.models.types import utcnow
from app.outbox import emit
from app.payments.ledger import lock_invoice
from app.payments.sepa import follow_credit
from app.records import validation as v


@dataclass(frozen=True)
class CreditRequest:
    """What to credit: everything (neither given), chosen line positions, or a gross amount."""

    reason: str | None
    amount: Decimal | None = None
    lines: tuple[int, ...] | None = None


def parse_line_numbers(text: str | None) -> tuple[int, ...]:
    """'1,2' → (1, 2): the line numbers (positions) printed on the invoice."""
    numbers = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part.isascii() or not part.isdigit() or int(part) < 1:
            raise v.FieldError(f"{part!r} is not a line number: give the invoice's line numbers, e.g. 1,2")
        numbers.append(int(part))
    if len(set(numbers)) != len(numbers):
        raise v.FieldError("a line number is given twice")
    return tuple(numbers)


def parse_credit_amount(text: str | None, locale: str | None = None) -> Decimal:
    """The amount to credit: 10.00, or in `locale` when given (10,00 for de_DE)."""
    if locale:
        amount = v.parse_decimal(v.required(text, "an amount"), locale=locale)
    else:
        try:
            amount = Decimal(v.required(text, "an amount").strip())
        except InvalidOperation:
            raise v.FieldError(f"{text.strip()!r} is not an amount: write it like 10.00") from None
    if not amount.is_finite() or amount <= 0:
        raise v.FieldError("the amount to credit must be greater than zero")
    return amount


# ------------------------------------------------------------------ reading
def credit_notes_of(invoice: Invoice) -> list[Invoice]:
    return list(db.session.scalars(select(Invoice).where(Invoice.credited_invoice_id == invoice.id)
                                   .order_by(Invoice.sequence_year, Invoice.sequence_number)))


def _amounts(document: Invoice) -> InvoiceAmounts:
    return compute_invoice(line_inputs(document), document.currency)


def credited_total(invoice: Invoice, notes: list[Invoice] | None = None) -> Decimal:
    notes = credit_notes_of(invoice) if notes is None else notes
    return round_money(sum((Decimal(n.total_amount) for n in notes), Decimal(0)), invoice.currency)


def left_to_credit(invoice: Invoice, notes: list[Invoice] | None = None) -> Decimal:
    return round_money(Decimal(invoice.total_amount), invoice.currency) - credited_total(invoice, notes)


def _left_by_rate(invoice: Invoice, notes: list[Invoice]) -> dict[tuple, Decimal]:
    """(rate, tax treatment) of each VAT breakdown → the gross still to credit there."""
    left: dict[tuple, Decimal] = {}
    for document, sign in ((invoice, 1), *((note, -1) for note in notes)):
        for subtotal in _amounts(document).vat:
            key = (subtotal.rate, subtotal.treatment)
            left[key] = left.get(key, Decimal(0)) + sign * (subtotal.taxable + subtotal.tax)
    return left


def _net_left_by_rate(invoice: Invoice, notes: list[Invoice]) -> dict[tuple, Decimal]:
    """(rate, tax treatment) of each VAT breakdown → the net still to credit there."""
    left: dict[tuple, Decimal] = {}
    for document, sign in ((invoice, 1), *((note, -1) for note in notes)):
        for subtotal in _amounts(document).vat:
            key = (subtotal.rate, subtotal.treatment)
            left[key] = left.get(key, Decimal(0)) + sign * subtotal.taxable
    return left


def fully_credited(invoice: Invoice, notes: list[Invoice]) -> bool:
    """Nothing left to credit: the gross, or every VAT rate's net (the VAT rounding of each document aside)."""
    return left_to_credit(invoice, notes) <= 0 or all(net <= 0 for net in _net_left_by_rate(invoice, notes).values())


def _credited_positions(notes: list[Invoice]) -> set[int]:
    return {line.credited_position for note in notes for line in note.lines if line.credited_position is not None}


def refusal(invoice: Invoice) -> str | None:
    """Why this document cannot be credited at all, or None."""
    if invoice.kind == "credit_note":
        return (f"{invoice.number} is a credit note: a credit note is not credited; to undo it, bill again "
                f"(a new invoice) or issue a new invoice for the difference")
    if invoice.status == "draft":
        return "a draft has no number yet and is not credited: edit or delete the draft instead"
    if invoice.status == "void":
        return f"invoice {invoice.number} is void (before credit notes existed): nothing is due on it any more"
    if invoice.status == "credited":
        return f"invoice {invoice.number} is fully credited already"
    return None


@dataclass
class Correction:
    """What the invoice page shows about credit notes: an invoice's notes and what is left to credit, or a
    credit note's invoice and the customer credit it left."""

    notes: list[Invoice]
    left: Decimal | None
    can_credit: bool
    credited_invoice: Invoice | None = None
    customer_credit: CustomerCredit | None = None


def correction(document: Invoice) -> Correction:
    if document.kind == "credit_note":
        credit = db.session.scalar(select(CustomerCredit).where(CustomerCredit.credit_note_id == document.id))
        return Correction([], None, False, document.credited_invoice, credit)
    if document.status == "draft":
        return Correction([], None, False)
    notes = credit_notes_of(document)
    return Correction(notes, left_to_credit(document, notes), refusal(document) is None)


# ------------------------------------------------------------------ crediting
@transactional
def credit_invoice(invoice: Invoice, request: CreditRequest, actor: Actor, *, today: date | None = None) -> Invoice:
    """Issue a credit note for `invoice` (see the module's docstring); returns the credit note.

    Raises ValidationError (field → message) and changes nothing when the request is wrong.
    """
    errors: dict[str, str] = {}
    reason = None
    try:
        reason = v.parse_multiline_text(v.required(request.reason, "a reason"), "the reason", v.ONE_LINE_TEXT_MAX)
    except v.FieldError as error:
        errors["reason"] = f"{error}: say why the invoice is credited (it is printed on the credit note)"
    if request.amount is not None and request.lines is not None:
        errors["amount"] = "credit either an amount or chosen lines, not both"
    lock_entity(invoice.legal_entity_id)  # numbers, and what the billing run reads, stay consistent
    invoice = lock_invoice(invoice.id)  # payments take this row lock
    db.session.refresh(invoice)
    why_not = refusal(invoice)
    if why_not:
        errors["status"] = why_not
    if errors:
        raise v.ValidationError(errors)

    currency, notes = invoice.currency, credit_notes_of(invoice)
    left = left_to_credit(invoice, notes)
    description = f"Credit on invoice {invoice.number}"
    if request.lines is not None:
        field, lines = "lines", _chosen_lines(invoice, request.lines, notes)
    elif request.amount is not None:
        field, amount = "amount", request.amount
        if amount != round_money(amount, currency):
            raise v.ValidationError({"amount": f"{amount} has more decimals than {currency} allows "
                                               f"({minor_unit(currency)})"})
        if amount > left:
            raise v.ValidationError({"amount": _above_left(invoice, amount, left, notes)})
        try:
            lines = credit_lines_for_amount(amount, _left_by_rate(invoice, notes), currency, description,
                                            invoice.legal_entity.locale)
        except CreditSplitError as error:
            raise v.ValidationError({"amount": str(error)}) from None
    elif notes:  # the rest: each VAT rate's net not credited yet
        field = "amount"
        lines = [LineInput(f"{description}: the rest", Decimal(1), net, rate, treatment)
                 for (rate, treatment), net in sorted(_net_left_by_rate(invoice, notes).items(),
                                                      key=lambda item: (item[0][0], item[0][1].category))
                 if net > 0]
    else:
        field = "amount"
        lines = [(line.position, LineInput(line.description, line.quantity, line.unit_price, line.vat_rate,
                                           line.treatment))
                 for line in invoice.lines]
    if not lines:
        raise v.ValidationError({field: f"nothing is left to credit on invoice {invoice.number}"})
    positioned = lines if isinstance(lines[0], tuple) else [(None, line) for line in lines]
    amounts = compute_invoice([line for _position, line in positioned], currency)
    # The rest may differ from the gross left by the VAT rounding of each document (a minor unit per rate).
    tolerance = len(amounts.vat) * Decimal(1).scaleb(-minor_unit(currency)) if notes and field == "amount" \
        and request.amount is None else Decimal(0)
    if amounts.total <= 0:
        raise v.ValidationError({field: "these lines add up to nothing: there is nothing to credit"})
    if amounts.total > left + tolerance:
        raise v.ValidationError({field: _above_left(invoice, amounts.total, left, notes)})

    note = _write_credit_note(invoice, positioned, amounts, reason, today or invoice.legal_entity.today())
    _apply_to_invoice(invoice, note, [*notes, note], max(amounts.total - left, Decimal(0)), actor)
    return note


def _chosen_lines(invoice: Invoice, positions: tuple[int, ...], notes: list[Invoice]) -> list:
    if not positions:
        raise v.ValidationError({"lines": "name at least one line number"})
    by_position = {line.position: line for line in invoice.lines}
    unknown = [p for p in positions if p not in by_position]
    if unknown:
        raise v.ValidationError({"lines": (
            f"invoice {invoice.number} has no line {', '.join(map(str, unknown))}: its lines are "
            f"{', '.join(map(str, sorted(by_position)))}")})
    done = sorted(set(positions) & _credited_positions(notes))
    if done:
        raise v.ValidationError({"lines": f"line {', '.join(map(str, done))} of invoice {invoice.number} is "
                                          "credited already"})
    chosen = [by_position[p] for p in sorted(positions)]
    return [(line.position, LineInput(line.description, line.quantity, line.unit_price, line.vat_rate,
                                      line.treatment))
            for line in chosen]


def _above_left(invoice: Invoice, amount: Decimal, left: Decimal, notes: list[Invoice]) -> str:
    earlier = f" (credited already: {', '.join(n.number for n in notes)})" if notes else ""
    locale = invoice.legal_entity.locale
    return (f"{format_money(amount, invoice.currency, locale)} is more than the "
            f"{format_money(left, invoice.currency, locale)} left to credit on invoice {invoice.number}{earlier}")


def _write_credit_note(invoice: Invoice, lines: list, amounts: InvoiceAmounts, reason: str, issue_date: date) -> Invoice:
    entity = invoice.legal_entity
    year = issue_date.year
    sequence = take_numbers(entity.id, year, 1, series="credit_note")
    note = Invoice(
        kind="credit_note", credited_invoice_id=invoice.id, legal_entity_id=invoice.legal_entity_id,
        customer_id=invoice.customer_id, contract_id=invoice.contract_id, billing_run_id=None,
        period_start=invoice.period_start, period_end=invoice.period_end,
        number=format_credit_note_number(entity.invoice_prefix, year, sequence), sequence_year=year,
        sequence_number=sequence, issue_date=issue_date, due_date=issue_date, currency=invoice.currency,
        net_amount=amounts.net, tax_amount=amounts.tax, total_amount=amounts.total, amount_due=Decimal(0),
        status="issued", credit_reason=reason, posted_at=utcnow(),
    )
    for (position, _line), computed in zip(lines, amounts.lines):
        tax = computed.treatment  # the invoice line's tax code, as the invoice states it
        note.lines.append(InvoiceLine(position=computed.position, description=computed.description,
                                      quantity=computed.quantity, unit_price=computed.unit_price,
                                      vat_rate=computed.vat_rate, net_amount=computed.net, credited_position=position,
                                      vat_category=tax.category, tax_code=tax.code, exemption_reason=tax.reason,
                                      exemption_reason_code=tax.reason_code, tax_note=tax.note))
    db.session.add(note)
    db.session.flush()
    return note


def _apply_to_invoice(invoice: Invoice, note: Invoice, notes: list[Invoice], rounding: Decimal, actor: Actor) -> None:
    """The invoice's amount due drops by the credit; what exceeds it is the customer's credit, except the
    `rounding` by which crediting the rest exceeds the gross left (VAT rounded per document)."""
    currency = invoice.currency
    due_before = round_money(Decimal(invoice.amount_due), currency)
    status_before = invoice.status
    reduction = min(due_before, note.total_amount)
    excess = max(note.total_amount - reduction - rounding, Decimal(0))
    invoice.amount_due = due_before - reduction
    if fully_credited(invoice, notes):
        invoice.status, invoice.amount_due = "credited", Decimal(0)
    elif invoice.amount_due == 0:
        invoice.status = "paid"  # settled: paid in part, and credited for the rest
    credit = None
    if excess > 0:
        credit = CustomerCredit(legal_entity_id=invoice.legal_entity_id, customer_id=invoice.customer_id,
                                credit_note_id=note.id, currency=currency, amount=excess)
        db.session.add(credit)
    db.session.flush()
    sepa_notes = follow_credit(invoice, note.number)
    common = dict(legal_entity_id=invoice.legal_entity_id, currency=currency, reason=note.credit_reason)
    record("credit_note.issued", "invoice", note.id, actor, number=note.number, credits=invoice.number,
           total=str(note.total_amount), customer_credit=str(excess) if excess else None, **common)
    record("invoice.credited", "invoice", invoice.id, actor, billing_run_id=invoice.billing_run_id,
           number=invoice.number, credit_note=note.number, credit_note_id=note.id, amount=str(note.total_amount),
           amount_due_before=str(due_before), amount_due=str(invoice.amount_due), status_before=status_before,
           status=invoice.status, customer_credit=str(excess) if excess else None, sepa=sepa_notes, **common)
    emit("credit_note.issued", {"invoice_id": note.id, "number": note.number, "credits": invoice.number,
                                "credited_invoice_id": invoice.id, "entity": invoice.legal_entity.code,
                                "contract_id": invoice.contract_id, "currency": currency,
                                "total": str(note.total_amount)},
         legal_entity_id=invoice.legal_entity_id)


# ------------------------------------------------------------------ customer credits
@transactional
def refund_credit(credit: CustomerCredit, reference: str | None, refunded_on: date, actor: Actor) -> CustomerCredit:
    """Record that what is left of a customer credit was paid back to the customer (audited)."""
    lock_entity(credit.legal_entity_id)  # the billing run applies credits under this lock
    db.session.refresh(credit)
    try:
        reference = v.parse_payment_reference(v.required(reference, "a reference"))
    except v.FieldError as error:
        raise v.ValidationError({"reference": f"{error}: say how it was paid back (e.g. the transfer's reference)"})
    available = round_money(Decimal(credit.available), credit.currency)
    if available <= 0:
        raise v.ValidationError({"status": "nothing is left of this credit: it was applied or refunded already"})
    credit.refunded_amount = Decimal(credit.refunded_amount) + available
    credit.refund_reference, credit.refunded_on, credit.refunded_by = reference, refunded_on, actor.label
    note = db.session.get(Invoice, credit.credit_note_id) if credit.credit_note_id else None
    record("customer_credit.refunded", "invoice" if note else "bank_entry", note.id if note else credit.bank_entry_id,
           actor, legal_entity_id=credit.legal_entity_id, credit_id=credit.id, credit_note=note.number if note else None,
           origin=credit.origin, amount=str(available), currency=credit.currency,
           reference=reference, refunded_on=refunded_on.isoformat())
    return credit
