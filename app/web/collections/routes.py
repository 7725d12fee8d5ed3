"""Collections > Batches: thin views over app.payments (sepa, collection, results).

Any legal entity's batch the user may see opens by its link (`entity_record_or_404`); the list shows the current
entity's."""
from __future__ import annotations

import re

from flask import Response, abort, current_app, flash, make_response, redirect, request, url_for
from flask_login import current_user

from app.audit import Actor
from app.errors import BatchError, OutcomeError, ResultImportFailed
from app.extensions import db
from app.models import LegalEntity, SepaBatch, SepaBatchItem
from app.payments.results import COLUMNS, EXAMPLE, apply_outcome, import_results
from app.payments.sepa import ClosePreview, close_batch, close_preview, file_name
from app.records.precedence import collection_lead_days
from app.web.collections import bp
from app.web.collections.queries import (BATCH_ORDER, batch_items, batch_rows, batch_total, batches_query,
                                         collections_needing_attention, collections_with_status)
from app.web.confirming import confirm_step, confirmation_refused
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, form_locale, keyset_page, render
from app.web.input import upload_limit


def _entity_of(batch: SepaBatch) -> LegalEntity:
    return db.session.get(LegalEntity, batch.legal_entity_id)


# ------------------------------------------------------------------ pages
@bp.get("")
@role_required("viewer")
def index():
    entity = current_entity()
    listing = attention = retries = None
    if entity is not None:
        listing = batch_rows(keyset_page(batches_query(entity), BATCH_ORDER))
        # A SEPA debit customer's invoice waits only when a payment on it was reversed: a person decides.
        attention = collections_needing_attention(entity)
        retries = collections_with_status(entity, ("retry_scheduled",))
    return render("collections/index.html", "collections/_batches.html", entity=entity, listing=listing,
                  attention=attention, retries=retries)


def _batch_page(batch: SepaBatch, *, close_error: str | None = None, item_errors: dict | None = None,
                import_errors: list[str] | None = None, status: int = 200) -> Response:
    entity = _entity_of(batch)
    response = render("collections/batch.html", batch=batch, entity=entity, rows=batch_items(batch),
                      total=batch_total(batch), today=entity.today(), lead_days=collection_lead_days(entity), close_error=close_error,
                      item_errors=item_errors or {}, import_errors=import_errors or [], columns=COLUMNS,
                      example=EXAMPLE)
    response.status_code = status
    return response


@bp.get("/batches/<int:batch_id>")
@role_required("viewer")
def batch(batch_id: int):
    return _batch_page(entity_record_or_404(SepaBatch, batch_id))


@bp.get("/batches/<int:batch_id>/pain008.xml")
@role_required("viewer")
def pain008(batch_id: int):
    batch = entity_record_or_404(SepaBatch, batch_id)
    if batch.status != "closed" or not batch.xml:
        abort(404)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", file_name(batch))  # the MsgId in the file
    response = make_response(batch.xml)
    response.mimetype = "application/xml"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# ------------------------------------------------------------------ actions
def _close_step(batch: SepaBatch, preview: ClosePreview, problem: str | None = None, status: int = 200) -> Response:
    """The confirm step before closing: debits, totals, collection dates, what drops out; then Close."""
    return confirm_step("collections/close.html", "sepa_close", preview.facts(), can_confirm=preview.problem is None,
                        problem=problem, status=status, batch=batch, entity=_entity_of(batch), preview=preview)


@bp.get("/batches/<int:batch_id>/close")
@role_required("accountant")
def close_confirm(batch_id: int):
    batch = entity_record_or_404(SepaBatch, batch_id)
    if batch.status != "open":
        return redirect(url_for("collections.batch", batch_id=batch.id), 303)
    return _close_step(batch, close_preview(batch, _entity_of(batch).today()))


@bp.post("/batches/<int:batch_id>/close")
@role_required("accountant")
def close(batch_id: int):
    """Close the batch, only with a Confirm of the close step that stands for what closing would send now."""
    batch = entity_record_or_404(SepaBatch, batch_id)
    today = _entity_of(batch).today()
    preview = close_preview(batch, today)
    if preview.problem is not None:
        return _batch_page(batch, close_error=preview.problem, status=422)
    refused = confirmation_refused("sepa_close", preview.facts())
    if refused:
        return _close_step(batch, preview, f"The batch was not closed: {refused}.", 409)
    try:
        close_batch(batch, Actor.for_user(current_user), today, confirmation=_confirmed(preview))
    except BatchError as error:
        return _batch_page(entity_record_or_404(SepaBatch, batch_id), close_error=str(error), status=422)
    flash(f"Batch #{batch.id} closed: {batch.item_count} debit{'s' if batch.item_count != 1 else ''}, "
          f"to be collected on {batch.collection_date.isoformat()}. Download the pain.008 file and send it to "
          "the bank.", "success")
    return redirect(url_for("collections.batch", batch_id=batch.id), 303)


def _confirmed(preview: ClosePreview) -> dict:
    """What the person saw when they pressed Close, for the audit entry."""
    return {"debits": len(preview.debits), "totals": {c: str(a) for c, a in preview.totals.items()},
            "collection_dates": {d.isoformat(): n for d, n in preview.dates},
            "dropping_out": [d.item.end_to_end_id for d in preview.dropped]}


@bp.post("/batches/<int:batch_id>/items/<int:item_id>/outcome")
@role_required("accountant")
def outcome(batch_id: int, item_id: int):
    batch = entity_record_or_404(SepaBatch, batch_id)
    item = db.get_or_404(SepaBatchItem, item_id)
    if item.batch_id != batch.id:  # another batch's item (perhaps another entity's): as if it did not exist
        abort(404)
    form = request.form
    try:
        done = apply_outcome(item, form.get("outcome", ""), form.get("date", ""), form.get("reason", ""),
                             Actor.for_user(current_user), form_locale())
    except OutcomeError as error:
        errors = {"errors": error.errors, "values": form.to_dict()}
        return _batch_page(entity_record_or_404(SepaBatch, batch_id), item_errors={item_id: errors}, status=422)
    flash(f"Debit {item.end_to_end_id} recorded as {done}.", "success")
    return redirect(url_for("collections.batch", batch_id=batch.id) + f"#item-{item.id}", 303)


@bp.post("/batches/<int:batch_id>/results")
@role_required("accountant")
@upload_limit("MAX_CONTENT_LENGTH", "Split the bank's result file and upload each part, or import it on the command "
              "line, where no upload limit applies: flask sepa results FILE.")
def results(batch_id: int):
    batch = entity_record_or_404(SepaBatch, batch_id)
    upload = request.files.get("file")
    errors: list[str]
    if upload is None or not upload.filename:
        errors = ["choose the bank's result file (CSV, pain.002 or camt.054) to import"]
    else:
        try:
            summary = import_results(upload.stream, Actor.for_user(current_user),
                                     max_rows=current_app.config["IMPORT_MAX_ROWS"],
                                     file_format=request.form.get("format") or None)
        except ResultImportFailed as failure:
            errors = failure.errors
        else:
            accepted = f", {summary.accepted} received by the bank (not settled yet)" if summary.accepted else ""
            flash(f"Imported {summary.rows} result{'s' if summary.rows != 1 else ''}: {summary.collected} "
                  f"collected, {summary.returned} returned{accepted}.", "success")
            return redirect(url_for("collections.batch", batch_id=batch.id), 303)
    return _batch_page(entity_record_or_404(SepaBatch, batch_id), import_errors=errors, status=422)
