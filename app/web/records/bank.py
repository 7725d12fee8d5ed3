"""Records > Bank: statements uploaded (camt.053, MT940, CSV), the unmatched queue and what an accountant does with
it (assign to an invoice, not ours, look again), and one entry's detail. The work is app.payments.cash's."""
from __future__ import annotations

from decimal import Decimal

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.audit import Actor
from app.banking.statements import FORMATS
from app.errors import FieldError, PaymentError
from app.extensions import db, htmx
from app.models import BankEntry, Invoice
from app.models.banking import QUEUED
from app.payments import bank_queue, cash
from app.records.validation import parse_price
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, form_locale, keyset_page, money, render
from app.web.input import arg_search, upload_limit
from app.web.records import bp
from app.web.records.customers import unprocessable

RECENT_STATEMENTS = 10
FORMAT_NAMES = {"camt053": "camt.053 (ISO 20022 XML)", "mt940": "MT940 (SWIFT)", "csv": "CSV"}
TOO_LARGE = ("Statements are read up to this size. Ask the bank for shorter statements (one per day or week), "
             "or split the file by date, and upload each (flask bank import reads the same files).")


def render_bank(entity, *, result: cash.ImportResult | None = None, problems: list[str] | None = None,
                form: dict | None = None):
    """The bank page, or for the search box (HTMX) only the queue."""
    search = arg_search()
    context = {"entity": entity, "q": search, "result": result, "problems": problems or [], "form": form or {},
               "formats": FORMAT_NAMES, "candidates_of": lambda _entry: [], "queued": QUEUED}
    if entity is not None:
        statements = bank_queue.statements_query(entity)
        queue = keyset_page(bank_queue.queue_query(entity, search), bank_queue.QUEUE_ORDER)
        if current_user.can("accountant"):
            found = bank_queue.page_candidates(queue.items)
            context["candidates_of"] = lambda entry: found.get(entry.id, [])
        context.update(
            queue=queue,
            waiting=bank_queue.unmatched_total(entity),
            statements=list(db.session.scalars(statements.limit(RECENT_STATEMENTS))),
            statement_count=db.session.scalar(select(func.count()).select_from(statements.order_by(None).subquery())))
    response = render("records/bank.html", "records/_bank_queue.html", **context)
    return unprocessable(response) if problems else response


@bp.get("/bank")
@role_required("viewer")
def bank():
    return render_bank(current_entity())


@bp.post("/bank/import")
@role_required("accountant")
@upload_limit("STATEMENT_MAX_BYTES", TOO_LARGE)
def bank_import():
    """All of the statement or nothing: the summary of what was applied, or every problem (422)."""
    entity = current_entity()
    if entity is None:
        abort(404)
    upload = request.files.get("file")
    file_format = request.form.get("format", "").strip()
    form = {"format": file_format}
    if upload is None or not upload.filename:
        return render_bank(entity, problems=["choose the statement file to import"], form=form)
    if file_format and file_format not in FORMATS:
        return render_bank(entity, problems=[f"format: {file_format!r} is not one of {', '.join(FORMATS)}; "
                                             "or leave it to be found from the file"], form=form)
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        result = cash.import_statement(entity, upload.read(), name, Actor.for_user(current_user), file_format or None)
    except cash.BankImportError as error:
        return render_bank(entity, problems=error.problems, form=form)
    return render_bank(entity, result=result)


@bp.post("/bank/rematch")
@role_required("accountant")
def bank_rematch():
    """The Reconciliation Agent looks again at every waiting credit (invoices issued since may match now)."""
    entity = current_entity()
    if entity is None:
        abort(404)
    result = bank_queue.rematch(entity, Actor.for_user(current_user))
    waiting = result.partially_matched + result.unmatched
    looked = result.matched + waiting
    flash(f"Looked again at {looked} waiting credit{'s' if looked != 1 else ''}: {result.matched} matched now"
          + (f", {result.partially_matched} applied in part" if result.partially_matched else "")
          + f"; {waiting} wait{'s' if waiting == 1 else ''} for an accountant.", "success")
    return redirect(url_for("records.bank"), 303)


# ------------------------------------------------------------------ one entry
def get_entry(entry_id: int) -> BankEntry:
    """The entry, when the user holds the view's role in its legal entity; else not found (404)."""
    return entity_record_or_404(BankEntry, entry_id)


@bp.get("/bank/entries/<int:entry_id>")
@role_required("viewer")
def bank_entry(entry_id: int):
    return render_entry(get_entry(entry_id))


def render_entry(entry: BankEntry, errors: dict | None = None, form: dict | None = None):
    response = render("records/bank_entry.html", entry=entry, history=bank_queue.entry_history(entry),
                      candidates=_candidates(entry), errors=errors or {}, form=form or {}, queued=QUEUED)
    return unprocessable(response) if errors else response


def _candidates(entry: BankEntry) -> list[Invoice]:
    return bank_queue.candidates(entry) if entry.status in QUEUED and current_user.can("accountant") else []


def render_row(entry: BankEntry, *, errors: dict | None = None, form: dict | None = None, message: str = ""):
    """The queue row of an entry (HTMX): with the error of the form that failed (422), or with what was done,
    and the totals of what waits (swapped out of band)."""
    response = render("records/_bank_row_answer.html", entry=entry, errors=errors or {}, form=form or {},
                      message=message, candidates=_candidates(entry), queued=QUEUED,
                      waiting=bank_queue.unmatched_total(current_entity()))
    return unprocessable(response) if errors else response


def _answer(entry: BankEntry, errors: dict, form: dict, message: str, done: bool):
    """HTMX: the row; otherwise the entry's page (with the errors, 422) or back to it after the change."""
    if not done:
        entry = get_entry(entry.id)
        return render_row(entry, errors=errors, form=form) if htmx else render_entry(entry, errors, form)
    if htmx:
        return render_row(entry, message=message)
    flash(message, "success")
    return redirect(url_for("records.bank_entry", entry_id=entry.id), 303)


@bp.post("/bank/entries/<int:entry_id>/assign")
@role_required("accountant")
def bank_assign(entry_id: int):
    """Apply a waiting credit (or part of it) to an invoice; by default as much as both allow."""
    entry = get_entry(entry_id)
    form = {k: request.form.get(k, "").strip() for k in ("invoice_number", "amount")}
    amount: Decimal | None = None
    errors: dict[str, str] = {}
    if not form["invoice_number"]:
        errors["invoice_number"] = "write the number of the invoice this money pays"
    if form["amount"]:
        try:
            amount = parse_price(form["amount"], form_locale())
        except FieldError as error:
            errors["amount"] = str(error)
    if errors:
        return _answer(entry, errors, form, "", done=False)
    try:
        payment = bank_queue.assign(entry.id, form["invoice_number"], amount, Actor.for_user(current_user),
                              entity=current_entity())
    except (bank_queue.QueueError, PaymentError) as error:
        return _answer(entry, {"assign": str(error)}, form, "", done=False)
    invoice = db.session.get(Invoice, payment.invoice_id)
    message = (f"Applied {money(payment.amount, invoice.currency)} to {invoice.number}; "
               f"{money(invoice.amount_due, invoice.currency)} still due.")
    if entry.status in QUEUED:
        message += f" {money(entry.unapplied, entry.currency)} of this transfer is not applied yet."
    return _answer(entry, {}, form, message, done=True)


@bp.post("/bank/entries/<int:entry_id>/not-ours")
@role_required("accountant")
def bank_not_ours(entry_id: int):
    """Take a waiting credit out of the queue: not a customer's payment (a refund, a loan, a wrong transfer)."""
    entry = get_entry(entry_id)
    form = {"reason": request.form.get("reason", "").strip()}
    try:
        bank_queue.mark_not_ours(entry.id, form["reason"], Actor.for_user(current_user), entity=current_entity())
    except bank_queue.QueueError as error:
        return _answer(entry, {"not_ours": str(error)}, form, "", done=False)
    return _answer(entry, {}, form, f"Marked as not ours: {entry.match_note}", done=True)
