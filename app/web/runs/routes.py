"""Runs > Billing: thin views over app.billing.runs (actions) and app.billing.queries (reads).

Any run of a legal entity the user may see opens (audit links point across entities; `entity_record_or_404`)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.audit import Actor
from app.billing.queries import (RUN_INVOICE_ORDER, RUN_ITEM_ORDER, RUN_ORDER, run_invoices_query, run_items_query,
                                 run_timeline, runs_query)
from app.billing.preview import RunPreview, preview_run
from app.billing.runs import cancel_run, failed_contract_ids, retry_failed
from app.errors import RunRefused
from app.extensions import db, htmx
from app.models import BillingRun
from app.models.runs import ITEM_STATUSES, RUN_STATUSES
from app.web.confirming import confirm_step, confirmation_refused
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, go_to, keyset_page, render
from app.web.input import arg_choice
from app.web.runs import bp
from app.web.runs.presenters import run_helpers

TABS = (("contracts", "Contracts", "runs.contracts"), ("invoices", "Invoices", "runs.invoices"),
        ("audit", "Audit", "runs.audit"))

bp.context_processor(run_helpers)


# ------------------------------------------------------------------ the list
@bp.get("")
@login_required
def index():
    entity = current_entity()
    status = arg_choice("status", RUN_STATUSES)
    pager = keyset_page(runs_query(entity.id, status or None), RUN_ORDER) if entity else None
    return render("runs/index.html", "runs/_table.html", entity=entity, pager=pager, status=status)


@bp.get("/<int:run_id>/row")
@login_required
def row(run_id: int):
    """One row of the list; it polls itself while the run is pending or running."""
    run = entity_record_or_404(BillingRun, run_id)
    if not htmx:
        return redirect(url_for("runs.detail", run_id=run.id))
    return render("runs/_row.html", "runs/_row.html", run=run)


# ------------------------------------------------------------------ the detail and its tabs
def _detail(run_id: int, tab: str):
    run = entity_record_or_404(BillingRun, run_id)
    context = {"run": run, "tab": tab, "locale": run.legal_entity.locale,
               "tabs": [(key, label, url_for(endpoint, run_id=run.id)) for key, label, endpoint in TABS],
               "self_url": request.full_path.rstrip("?")}
    if tab == "contracts":
        context["item_status"] = arg_choice("status", ITEM_STATUSES)
        context["pager"] = keyset_page(run_items_query(run.id, context["item_status"] or None), RUN_ITEM_ORDER)
    elif tab == "invoices":
        context["pager"] = keyset_page(run_invoices_query(run.id), RUN_INVOICE_ORDER)
    else:
        context["timeline"] = run_timeline(run, run.legal_entity.locale)
    return render("runs/detail.html", "runs/_body.html", **context)


@bp.get("/<int:run_id>")
@login_required
def detail(run_id: int):
    return _detail(run_id, "contracts")


@bp.get("/<int:run_id>/contracts")
@login_required
def contracts(run_id: int):
    return _detail(run_id, "contracts")


@bp.get("/<int:run_id>/invoices")
@login_required
def invoices(run_id: int):
    return _detail(run_id, "invoices")


@bp.get("/<int:run_id>/audit")
@login_required
def audit(run_id: int):
    return _detail(run_id, "audit")


# ------------------------------------------------------------------ actions
def _retry_step(run: BillingRun, preview: RunPreview, problem: str | None = None, status: int = 200):
    """Retry failed's confirm step: the preview of a run of only the failed contracts, then Confirm."""
    return confirm_step("runs/retry.html", "billing_run", preview.facts(), can_confirm=preview.can_confirm,
                        problem=problem, status=status, run=run, preview=preview,
                        confirm_url=url_for("runs.retry", run_id=run.id),
                        cancel_url=url_for("runs.detail", run_id=run.id), hx_target=None)


def _refused(run: BillingRun, refused: RunRefused):
    flash(f"Nothing retried: {refused}.", "error")
    return go_to(url_for("runs.detail", run_id=run.id))


@bp.get("/<int:run_id>/retry")
@role_required("accountant")
def retry_confirm(run_id: int):
    run = entity_record_or_404(BillingRun, run_id)
    if run.dry_run or not failed_contract_ids(run):
        return redirect(url_for("runs.detail", run_id=run.id))
    try:
        return _retry_step(run, preview_run(run.legal_entity, run.as_of, retry_of=run))
    except RunRefused as refused:
        return _refused(run, refused)


@bp.post("/<int:run_id>/retry")
@role_required("accountant")
def retry(run_id: int):
    """Start a run of only the contracts that failed in this one: a dry run's at once, a real run's once its
    preview (the Retry step) is confirmed."""
    run = entity_record_or_404(BillingRun, run_id)
    confirmation = None
    try:
        if not run.dry_run and failed_contract_ids(run):
            preview = preview_run(run.legal_entity, run.as_of, retry_of=run)
            refused = confirmation_refused("billing_run", preview.facts())
            if refused:
                return _retry_step(run, preview, f"Nothing retried: {refused}.", 409)
            if not preview.can_confirm:
                return _retry_step(run, preview, "Nothing retried: there is nothing to confirm.", 409)
            confirmation = preview.facts()
        result = retry_failed(run, Actor.for_user(current_user), confirmation=confirmation)
    except RunRefused as refused:
        return _refused(run, refused)
    flash(result.message, "success" if result.started else "info")
    return go_to(url_for("runs.detail", run_id=result.run.id))


@bp.post("/<int:run_id>/cancel")
@role_required("accountant")
def cancel(run_id: int):
    run = entity_record_or_404(BillingRun, run_id)
    if cancel_run(run, Actor.for_user(current_user)):
        flash(f"Run #{run.number} cancelled.", "success")
    else:
        db.session.refresh(run)
        flash(f"Run #{run.number} is {run.status.replace('_', ' ')}: only a pending run can be cancelled.", "error")
    return go_to(url_for("runs.detail", run_id=run.id))
