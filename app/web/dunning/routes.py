"""Views over app/dunning: thin, entity-scoped (another entity's record is a 404), CSRF-protected forms."""
from __future__ import annotations

import io
from datetime import date

from flask import flash, redirect, request, send_file, url_for
from flask_login import current_user

from app.audit import Actor
from app.dunning import holds, service
from app.dunning.texts import level_title, language_of, setting_name
from app.models import Customer, DunningNotice, Invoice, LegalEntity
from app.records.validation import FieldError, ValidationError, parse_date
from app.web.decorators import role_required
from app.web.dunning import bp
from app.web.helpers import current_entity, entity_record_or_404, input_date, render


def _as_of(entity: LegalEntity) -> tuple[date, str, str | None]:
    """The as-of date asked for (today in the entity's time zone by default), its text in the entity's locale, an
    error; ISO dates are read too."""
    text = request.args.get("as_of", "").strip()
    today = entity.today()
    if not text:
        return today, input_date(today, entity.locale), None
    try:
        as_of = parse_date(text, entity.locale)
    except FieldError as error:
        return today, text, f"As-of date: {error}."
    return as_of, input_date(as_of, entity.locale), None


@bp.get("/dunning")
@role_required("viewer")
def preview():
    """Who gets which reminder level on a day, before anything is sent (the Dunning Agent's Run sends them)."""
    entity = current_entity()
    plan, as_of_text, error, titles = None, "", None, {}
    if entity is not None:
        as_of, as_of_text, error = _as_of(entity)
        configuration = service.settings()
        plan = service.plan(entity, as_of, configuration)
        language = language_of(entity.locale)
        titles = {n.level: level_title(configuration[setting_name("titles", language)], n.level) for n in plan.notices}
    return render("dunning/preview.html", "dunning/_preview.html", entity=entity, plan=plan, as_of_text=as_of_text,
                  error=error, titles=titles, recent=service.recent_notices(entity.id) if entity else [])


@bp.get("/dunning/reminders/<int:notice_id>/pdf")
@role_required("viewer")
def reminder_pdf(notice_id: int):
    """The reminder as it was e-mailed (rendered again from its stored figures)."""
    from app.dunning.document import render_notice_pdf

    notice = entity_record_or_404(DunningNotice, notice_id)
    return send_file(io.BytesIO(render_notice_pdf(notice)), mimetype="application/pdf", as_attachment=True,
                     download_name=service.notice_filename(notice))


@bp.post("/dunning/customers/<int:customer_id>/hold")
@role_required("accountant")
def customer_hold(customer_id: int):
    customer = entity_record_or_404(Customer, customer_id)
    try:
        holds.hold_customer(customer, request.form.get("reason", ""), request.form.get("note"),
                            Actor.for_user(current_user))
    except ValidationError as error:
        flash("Not held: " + "; ".join(error.errors.values()), "error")
    else:
        flash(f"{customer.name} gets no payment reminders ({customer.dunning_hold}) until released.", "success")
    return redirect(url_for("records.customer_detail", customer_id=customer.id))


@bp.post("/dunning/customers/<int:customer_id>/release")
@role_required("accountant")
def customer_release(customer_id: int):
    customer = entity_record_or_404(Customer, customer_id)
    holds.release_customer(customer, Actor.for_user(current_user))
    flash(f"{customer.name} gets payment reminders again.", "success")
    return redirect(url_for("records.customer_detail", customer_id=customer.id))


@bp.post("/dunning/invoices/<int:invoice_id>/dispute")
@role_required("accountant")
def invoice_dispute(invoice_id: int):
    invoice = entity_record_or_404(Invoice, invoice_id)
    disputed = request.form.get("disputed") == "1"
    try:
        holds.set_invoice_disputed(invoice, disputed, request.form.get("note"), Actor.for_user(current_user))
    except ValidationError as error:
        flash("; ".join(error.errors.values()), "error")
    else:
        flash(f"Invoice {invoice.number} is disputed: no payment reminder lists it." if disputed
              else f"Invoice {invoice.number}: dispute settled, reminded again when overdue.", "success")
    return redirect(url_for("records.invoice_detail", invoice_id=invoice.id))
