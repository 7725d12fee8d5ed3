"""Invoice pages: list with filters and totals, detail with VAT summary and history, post, credit (credit notes)."""
from __future__ import annotations

import io

from flask import Response, abort, flash, redirect, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from app.audit import Actor
from app.errors import DocumentError, FieldError, PaymentError, ValidationError
from app.extensions import db, htmx
from app.models import Invoice, Payment
from app.models.invoices import DOCUMENT_KINDS
from app.models.payments import SHOWN_STATUSES
from app.paging import count_upto
from app.records import invoices as service
from app.records.customers import customer_choices
from app.agents.service import enqueue_resend
from app.dunning.service import reminders_of_invoice
from app.delivery.service import (DELIVERY_FILTERS, bulk_resend_plan, delivery_state, delivery_states,
                                   document_filename, undelivered_minutes)
from app.web.confirming import confirm_step, confirmation_refused
from app.web.decorators import role_required
from app.web.helpers import (csv_download, csv_format, current_entity, entity_record_or_404, export_links, form_locale,
                             go_to, keyset_page, money, render)
from app.web.records import bp
from app.web.records.customers import unprocessable


def get_invoice(invoice_id: int) -> Invoice:
    return entity_record_or_404(Invoice, invoice_id)


@bp.get("/invoices")
@role_required("viewer")
def invoices():
    entity = current_entity()
    filters = service.InvoiceFilters.from_args(request.args, form_locale())
    listing = totals = None
    states: dict = {}
    today = entity.today() if entity else None
    if entity:
        # Counted up to a cap first: adding up more invoices than a page view can afford is left to narrower
        # filters (the totals of a million invoices cost more than the page itself).
        counted = count_upto(service.invoice_count_query(entity, filters, today))
        listing = keyset_page(service.invoice_query(entity, filters, today), service.INVOICE_ORDER, counted)
        totals = None if listing.more else service.invoice_totals(entity, filters, today)
        states = delivery_states(listing.items)
    response = render("records/invoices.html", "records/_invoices_table.html", entity=entity, listing=listing,
                      totals=totals, filters=filters, statuses=SHOWN_STATUSES, today=today, kinds=DOCUMENT_KINDS,
                      delivery_states=states, selectable=True, carried=filters.filter_args(),
                      customers=customer_choices(entity, filters.customer_id) if entity else ([], False),
                      is_overdue=service.is_overdue,
                      delivery_filters=DELIVERY_FILTERS, undelivered_minutes=undelivered_minutes(),
                      downloads=export_links("records.invoices_csv", entity, _filter_args()))
    if filters.errors and not htmx:  # the page says which filter it ignored; HTMX swaps only 2xx answers
        response.status_code = 400
    return response


def _filter_args() -> dict[str, str]:
    """The list's filters as query arguments (not its page or order): the export takes the same."""
    return {name: value for name, value in request.args.items()
            if name not in ("page", "format", "after", "before", "sort")}


@bp.get("/invoices.csv")
@role_required("viewer")
def invoices_csv():
    """Every invoice the list shows with these filters (all pages), streamed: `?format=excel` for Excel."""
    entity = current_entity()
    if entity is None:
        abort(404)
    filters = service.InvoiceFilters.from_args(request.args, form_locale())
    if filters.errors:
        return Response("".join(f"{name}: {message}\n" for name, message in filters.errors.items()), 400,
                        mimetype="text/plain")
    fmt = csv_format(entity)
    today = entity.today()
    return csv_download(service.export_filename(entity, today), service.EXPORT_HEADER,
                        service.invoice_export_rows(entity, filters, today), fmt)


def _resend_target() -> tuple:
    entity = current_entity()
    kind = request.args.get("delivery", "undelivered")
    if entity is None or kind not in DELIVERY_FILTERS:
        abort(404)
    return entity, kind


def _resend_step(entity, plan, problem: str | None = None, status: int = 200):
    """The confirm step of Resend all: how many invoices, their totals, how many customers; then Resend."""
    return confirm_step("records/resend_confirm.html", "bulk_resend", plan.facts(), can_confirm=bool(plan.invoices),
                        problem=problem, status=status, entity=entity, plan=plan,
                        confirm_url=url_for("records.invoices_resend", delivery=plan.kind), carried=[],
                        back_url=url_for("records.invoices", delivery=plan.kind),
                        undelivered_minutes=undelivered_minutes())


@bp.get("/invoices/resend")
@role_required("accountant")
def invoices_resend_confirm():
    entity, kind = _resend_target()
    return _resend_step(entity, bulk_resend_plan(entity.id, kind))


@bp.post("/invoices/resend")
@role_required("accountant")
def invoices_resend():
    """Resend every invoice the E-mail filter shows (not e-mailed, outcome unknown, failed), once the
    confirm step that stands for exactly those invoices was confirmed."""
    entity, kind = _resend_target()
    plan = bulk_resend_plan(entity.id, kind)
    refused = confirmation_refused("bulk_resend", plan.facts())
    if refused:
        return _resend_step(entity, plan, f"Nothing was sent: {refused}.", 409)
    resend_confirmed(entity, plan)
    return redirect(url_for("records.invoices", delivery=kind))


def resend_confirmed(entity, plan) -> None:
    """Request the resends of a confirmed plan, commit, hand them to the queue and say so (Resend all, and
    Resend on the list's selection)."""
    from app.delivery.service import enqueue_resends, request_bulk_resend

    result = request_bulk_resend(entity.id, Actor.for_user(current_user), plan.kind, plan=plan, confirmed=True)
    not_posted = len(plan.left_alone) - result.in_progress - result.no_email
    notes = [f"{count} {what}" for count, what in ((result.in_progress, "still being sent or retried"),
                                                   (result.no_email, "without a customer e-mail address"),
                                                   (not_posted, "not posted")) if count]
    try:
        enqueue_resends(result.requested)
        flash(f"{len(result.requested)} invoice(s) will be e-mailed again"
              + (f"; left alone: {', '.join(notes)}" if notes else "") + ".", "success")
    except Exception:  # noqa: BLE001 - Redis down: the requests are on record, the sweep enqueues them later
        flash(f"{len(result.requested)} resend(s) recorded, but the job queue (Redis) is unreachable: they are sent "
              "when it is back.", "error")


@bp.get("/invoices/<int:invoice_id>")
@role_required("viewer")
def invoice_detail(invoice_id: int):
    return render_detail(get_invoice(invoice_id))


def render_detail(invoice: Invoice, errors: dict | None = None, payment_form: dict | None = None,
                  credit_form: dict | None = None, reverse_form: dict | None = None, partial: str | None = None):
    from app.records.credit_notes import correction

    today = invoice.legal_entity.today()
    response = render("records/invoice_detail.html", partial, invoice=invoice, entity=invoice.legal_entity,
                      correction=correction(invoice), credit_form=credit_form or {},
                      vat=service.vat_summary(invoice), history=service.invoice_history(invoice),
                      run=service.billing_run_of(invoice), overdue=service.is_overdue(invoice, today),
                      errors=errors or {}, today=today,
                      money_flow=service.delivery_and_payment(invoice), payment_form=payment_form or {},
                      reverse_form=reverse_form or {}, delivery=delivery_state(invoice),
                      undelivered_minutes=undelivered_minutes(), invoice_reminders=reminders_of_invoice(invoice.id))
    return unprocessable(response) if errors else response


@bp.post("/invoices/<int:invoice_id>/post")
@role_required("accountant")
def invoice_post(invoice_id: int):
    invoice = get_invoice(invoice_id)
    try:
        service.post_invoice(invoice, Actor.for_user(current_user))
    except ValidationError as error:
        return render_detail(invoice, error.errors)
    flash(f"Invoice posted as {invoice.number}.", "success")
    return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))


@bp.get("/invoices/<int:invoice_id>/delivery")
@role_required("viewer")
def invoice_delivery_state(invoice_id: int):
    """The invoice's e-mail state (a partial that polls itself until the state is final)."""
    invoice = get_invoice(invoice_id)
    compact = request.args.get("compact") == "1"
    return render("records/_delivery_state.html", "records/_delivery_state.html", invoice=invoice,
                  state=delivery_state(invoice), compact=compact)


@bp.post("/invoices/<int:invoice_id>/credit")
@role_required("accountant")
def invoice_credit(invoice_id: int):
    """Correct an issued invoice with a credit note: all of it, chosen lines, or an amount."""
    from app.records import credit_notes

    invoice = get_invoice(invoice_id)
    form = {k: request.form.get(k, "").strip() for k in ("what", "lines", "amount", "reason")}
    amount = lines = None
    if form["what"] not in ("all", "lines", "amount"):
        return render_detail(invoice, {"credit_what": "choose what to credit: the whole invoice, lines or an amount"},
                             credit_form=form)
    try:
        if form["what"] == "amount":
            amount = credit_notes.parse_credit_amount(form["amount"], form_locale())
        elif form["what"] == "lines":
            lines = credit_notes.parse_line_numbers(form["lines"])
    except FieldError as error:
        return render_detail(invoice, {f"credit_{form['what']}": str(error)}, credit_form=form)
    try:
        note = credit_notes.credit_invoice(invoice, credit_notes.CreditRequest(form["reason"], amount, lines),
                                           Actor.for_user(current_user))
    except ValidationError as error:
        invoice = get_invoice(invoice_id)
        return render_detail(invoice, {f"credit_{k}": m for k, m in error.errors.items()}, credit_form=form)
    flash(f"Credit note {note.number} issued for invoice {invoice.number}; it is e-mailed to the customer.", "success")
    return redirect(url_for("records.invoice_detail", invoice_id=note.id))


@bp.post("/invoices/<int:invoice_id>/refund-credit")
@role_required("accountant")
def credit_refund(invoice_id: int):
    """Record that the customer credit a credit note left was paid back to the customer."""
    from app.models import CustomerCredit
    from app.records.credit_notes import refund_credit

    note = get_invoice(invoice_id)
    credit = db.session.scalar(select(CustomerCredit).where(CustomerCredit.credit_note_id == note.id))
    if credit is None:
        abort(404)
    try:
        refund_credit(credit, request.form.get("reference", ""), note.legal_entity.today(),
                      Actor.for_user(current_user))
    except ValidationError as error:
        return render_detail(get_invoice(invoice_id), {f"refund_{k}": m for k, m in error.errors.items()})
    flash(f"Refund of the customer credit from {note.number} recorded.", "success")
    return redirect(url_for("records.invoice_detail", invoice_id=note.id))


@bp.get("/invoices/<int:invoice_id>/pdf")
@role_required("viewer")
def invoice_pdf(invoice_id: int):
    """The stored PDF/A-3 e-invoice (rendered and stored on first request)."""
    from app.documents.service import document_for_download

    invoice = get_invoice(invoice_id)
    if invoice.status == "draft":
        abort(404)
    try:
        document = document_for_download(invoice)
    except DocumentError as error:  # an EN 16931 rule or a character no font prints: nothing stored
        flash(f"The PDF of invoice {invoice.number} cannot be made: {error}", "error")
        return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))
    return send_file(io.BytesIO(document.pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=document_filename(invoice))


@bp.post("/invoices/<int:invoice_id>/resend")
@role_required("accountant")
def invoice_resend(invoice_id: int):
    from app.delivery.service import request_resend

    invoice = get_invoice(invoice_id)
    try:
        delivery = request_resend(invoice, Actor.for_user(current_user))
    except ValueError as error:
        return render_detail(invoice, {"delivery": str(error)})
    try:
        enqueue_resend(invoice.id, delivery.id)
        flash(f"Invoice {invoice.number} will be e-mailed again to {invoice.customer.email or '(no e-mail address)'}.",
              "success")
    except Exception:  # noqa: BLE001 - Redis down: say so, the request is on record
        flash("The resend is recorded, but the job queue (Redis) is unreachable: press Resend again later.", "error")
    return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))


@bp.post("/invoices/<int:invoice_id>/payments")
@role_required("accountant")
def invoice_payment(invoice_id: int):
    """Record a payment received by hand (partial payments included)."""
    from app.payments.ledger import record_typed_payment

    invoice = get_invoice(invoice_id)
    form = {k: request.form.get(k, "").strip() for k in ("amount", "received_on", "reference")}
    try:
        payment = record_typed_payment(invoice.id, form["amount"], form["received_on"], form["reference"],
                                       Actor.for_user(current_user), form_locale())
    except ValidationError as error:
        return render_detail(invoice, {f"payment_{k}": v for k, v in error.errors.items()}, payment_form=form)
    amount = payment.amount
    flash(f"Payment of {money(amount, invoice.currency)} recorded"
          + ("; the invoice is paid." if invoice.status == "paid" else "."), "success")
    return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))


@bp.post("/invoices/<int:invoice_id>/payments/<int:payment_id>/reverse")
@role_required("accountant")
def invoice_payment_reverse(invoice_id: int, payment_id: int):
    """Reverse a payment by a counter-entry, with a reason (HTMX: the payments section comes back on an error)."""
    from app.payments.ledger import reverse_payment

    invoice = get_invoice(invoice_id)
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.invoice_id != invoice.id:
        abort(404)
    reason = request.form.get("reason", "")
    try:
        reverse_payment(payment.id, reason, Actor.for_user(current_user))
    except PaymentError as error:
        return render_detail(invoice, {f"reverse_{payment.id}": str(error)},
                             reverse_form={"payment_id": payment.id, "reason": reason},
                             partial="records/_invoice_payments.html")
    flash(f"Payment #{payment.id} of {money(payment.amount, invoice.currency)} reversed: "
          f"{money(invoice.amount_due, invoice.currency)} is due on "
          f"{invoice.number}.", "success")
    return go_to(url_for("records.invoice_detail", invoice_id=invoice.id))


# ------------------------------------------------------------------ drafts
@bp.route("/invoices/<int:invoice_id>/edit", methods=["GET", "POST"])
@role_required("accountant")
def invoice_draft_edit(invoice_id: int):
    """Correct a draft's lines (a posted invoice is corrected by a credit note)."""
    from app.records import drafts
    from app.records.taxcodes import entity_codes
    from app.web.records.contracts import form_data, with_blank_rows

    invoice = get_invoice(invoice_id)
    if invoice.status != "draft":
        abort(404)
    lines, errors = drafts.draft_form_lines(invoice, form_locale()), {}
    if request.method == "POST":
        _data, lines = form_data()
        try:
            drafts.update_draft(invoice, lines, Actor.for_user(current_user), form_locale())
        except ValidationError as error:
            errors = error.errors
            invoice = get_invoice(invoice_id)
        else:
            flash("Draft corrected; post it to give it its number.", "success")
            return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))
    response = render("records/draft_form.html", invoice=invoice, lines=with_blank_rows(lines), errors=errors,
                      tax_codes=entity_codes(invoice.legal_entity, include_retired=False))
    return unprocessable(response) if errors else response


@bp.post("/invoices/<int:invoice_id>/delete")
@role_required("accountant")
def invoice_draft_delete(invoice_id: int):
    from app.records import drafts

    invoice = get_invoice(invoice_id)
    period = f"{invoice.contract.reference} {invoice.period_start.isoformat()}"
    try:
        drafts.delete_draft(invoice, Actor.for_user(current_user))
    except ValidationError as error:
        return render_detail(get_invoice(invoice_id), error.errors)
    flash(f"Draft for {period} deleted; the next billing run bills that period again unless the contract changes.",
          "success")
    return redirect(url_for("records.invoices"))
