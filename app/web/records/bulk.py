"""Bulk actions on the invoice list: Post and Resend a selection (ticked invoices, or all matching the filters),
each after a confirm step; Export is the list's CSV of the same selection (records.invoices_csv)."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.errors import NotInEntity
from app.audit import Actor
from app.delivery.service import resend_plan
from app.records.bulk_actions import SHOWN, post_plan, post_selection, selected_invoices
from app.records.invoices import InvoiceFilters
from app.web.confirming import confirm_step, confirmation_refused
from app.web.decorators import role_required
from app.web.helpers import current_entity, form_locale
from app.web.records import bp
from app.web.records.invoices import resend_confirmed

SHOW_ACTED_ON = 100  # after acting on up to this many, the list shows exactly those (numbers, e-mail state)


def _selection(args):
    """The current legal entity and the selection in `args`; None for the selection when nothing is selected
    (the caller sends the person back to the list). Ids of another legal entity: 404 (app.records.bulk_actions)."""
    entity = current_entity()
    if entity is None:
        abort(404)
    filters = InvoiceFilters.from_args(args, form_locale())
    if filters.errors:
        flash("Nothing done: " + "; ".join(filters.errors.values()) + ".", "error")
        return entity, None
    return entity, filters


def _back_to_list(filters: InvoiceFilters | None = None, acted_on: list[int] | None = None):
    """The list: showing exactly the invoices acted on (their numbers and e-mail state follow live) when
    they are few, else with the filters the person had."""
    if acted_on and len(acted_on) <= SHOW_ACTED_ON:
        return redirect(url_for("records.invoices", selected="1", invoice=acted_on), 303)
    args = filters.filter_args() if filters is not None and not filters.is_selection else []
    return redirect(url_for("records.invoices", **dict(args)), 303)


# ------------------------------------------------------------------ Post
def _post_step(entity, filters, plan, problem: str | None = None, status: int = 200):
    return confirm_step("records/bulk_post_confirm.html", "bulk_post", plan.facts(), can_confirm=bool(plan.drafts),
                        problem=problem, status=status, entity=entity, plan=plan, shown=SHOWN,
                        carried=filters.query_args(), confirm_url=url_for("records.invoices_bulk_post"),
                        back_url=url_for("records.invoices", **dict(filters.filter_args())))


def _plan_of(builder, entity, filters):
    try:
        return builder(entity, filters, entity.today())
    except NotInEntity:
        abort(404)


@bp.get("/invoices/bulk/post")
@role_required("accountant")
def invoices_bulk_post_confirm():
    """What posting the selection would do: numbers, totals, whom it e-mails and debits, what it leaves alone."""
    entity, filters = _selection(request.args)
    if filters is None:
        return _back_to_list()
    return _post_step(entity, filters, _plan_of(post_plan, entity, filters))


@bp.post("/invoices/bulk/post")
@role_required("accountant")
def invoices_bulk_post():
    """Post the selection's drafts, once the confirm step standing for exactly what would happen now was
    confirmed; numbers are issued as for one draft (records.invoice_post), under one take of the lock."""
    entity, filters = _selection(request.form)
    if filters is None:
        return _back_to_list()
    plan = _plan_of(post_plan, entity, filters)
    refused = confirmation_refused("bulk_post", plan.facts())
    if refused:
        return _post_step(entity, filters, plan, f"Nothing was posted: {refused}.", 409)
    if not plan.drafts:
        return _post_step(entity, filters, plan, "Nothing was posted: the selection holds no draft.", 409)
    result = post_selection(plan, Actor.for_user(current_user))
    posted = result.posted
    numbers = posted[0].number if len(posted) == 1 else f"{posted[0].number} – {posted[-1].number}"
    flash(f"{len(posted)} draft{'s' if len(posted) != 1 else ''} posted as {numbers}"
          + (f"; {result.left_alone} left alone" if result.left_alone else "")
          + ". Each is e-mailed to its customer within moments: the E-mail column follows it.", "success")
    return _back_to_list(filters, [invoice.id for invoice in posted])


# ------------------------------------------------------------------ Resend
def _resend_step(entity, filters, plan, problem: str | None = None, status: int = 200):
    return confirm_step("records/resend_confirm.html", "bulk_resend", plan.facts(), can_confirm=bool(plan.invoices),
                        problem=problem, status=status, entity=entity, plan=plan,
                        carried=filters.query_args(), confirm_url=url_for("records.invoices_bulk_resend"),
                        back_url=url_for("records.invoices", **dict(filters.filter_args())))


def _resend_plan(entity, filters, today):
    return resend_plan(selected_invoices(entity, filters, today))


@bp.get("/invoices/bulk/resend")
@role_required("accountant")
def invoices_bulk_resend_confirm():
    entity, filters = _selection(request.args)
    if filters is None:
        return _back_to_list()
    return _resend_step(entity, filters, _plan_of(_resend_plan, entity, filters))


@bp.post("/invoices/bulk/resend")
@role_required("accountant")
def invoices_bulk_resend():
    """E-mail the selection's posted invoices again, once its confirm step was confirmed (as Resend all)."""
    entity, filters = _selection(request.form)
    if filters is None:
        return _back_to_list()
    plan = _plan_of(_resend_plan, entity, filters)
    refused = confirmation_refused("bulk_resend", plan.facts())
    if refused:
        return _resend_step(entity, filters, plan, f"Nothing was sent: {refused}.", 409)
    if not plan.invoices:
        return _resend_step(entity, filters, plan, "Nothing was sent: nothing in the selection can be e-mailed.", 409)
    resend_confirmed(entity, plan)
    return _back_to_list(filters, [invoice.id for invoice in plan.invoices])
