"""Contract pages: list, detail with periods, create/edit with lines, pause/resume/end, CSV import."""
from __future__ import annotations

import re
from functools import partial

from flask import current_app, flash, redirect, request, url_for
from flask_login import current_user

from app.audit import Actor
from app.billing.periods import FREQUENCIES
from app.errors import ImportFailed, ValidationError
from app.models import Contract
from app.models.contracts import CONTRACT_STATUSES
from app.locale_input import input_date
from app.records import contracts as service
from app.records.customers import entity_customers
from app.records.invoices import is_overdue
from app.records.precedence import payment_terms
from app.records.importer import CLI_HINT, COLUMNS, import_contracts
from app.records.taxcodes import entity_codes
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, form_locale, keyset_page, render
from app.web.input import arg_choice, arg_id, arg_search, arg_whole_number, upload_limit
from app.web.records import bp
from app.web.records.customers import unprocessable

BLANK_ROWS = 3  # empty line rows the form offers; blank rows are ignored
_LINE_FIELD = re.compile(r"^lines-(\d{1,3})-(description|quantity|unit_price|vat_rate|tax_code)$")


def form_data() -> tuple[dict[str, str], list[dict[str, str]]]:
    """The contract fields, and the line rows in form order (row N is `lines-N-…`, N from 1)."""
    data = {field: request.form.get(field, "") for field in service.CONTRACT_FIELDS}
    rows: dict[int, dict[str, str]] = {}
    for name, value in request.form.items():
        match = _LINE_FIELD.match(name)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value
    last = max(rows, default=0)
    return data, [rows.get(n, {}) for n in range(1, last + 1)]


def get_contract(contract_id: int) -> Contract:
    return entity_record_or_404(Contract, contract_id)


def with_blank_rows(lines: list[dict[str, str]]) -> list[dict[str, str]]:
    """The submitted rows (numbering kept, so errors stay next to their row), padded with blank rows."""
    rows = list(lines) + [{}] * max(0, BLANK_ROWS - len(lines))
    if all(any((value or "").strip() for value in row.values()) for row in rows):
        rows.append({})
    return rows


def render_form(entity, contract, data, lines, errors):
    response = render("records/contract_form.html", entity=entity, contract=contract, data=data,
                      lines=with_blank_rows(lines), errors=errors, customers=entity_customers(entity),
                      tax_codes=entity_codes(entity, include_retired=False), frequencies=FREQUENCIES, invoiced=service.invoice_count(contract) if contract else 0)
    return unprocessable(response) if errors else response


@bp.get("/contracts")
@role_required("viewer")
def contracts():
    entity = current_entity()
    search = arg_search()
    status = arg_choice("status", CONTRACT_STATUSES)
    listing = keyset_page(service.contract_query(entity, search, status), service.CONTRACT_ORDER) if entity else None
    return render("records/contracts.html", "records/_contracts_table.html", entity=entity, listing=listing, q=search,
                  status=status, statuses=CONTRACT_STATUSES)


@bp.route("/contracts/new", methods=["GET", "POST"])
@role_required("accountant")
def contract_new():
    entity = current_entity()
    if entity is None:
        flash("Add a legal entity first: contracts belong to one.", "error")
        return redirect(url_for("records.contracts"))
    customer_id = arg_id("customer")
    data, lines, errors = {"currency": entity.currency, "frequency": "monthly",
                           "customer_id": str(customer_id or "")}, [], {}
    if request.method == "POST":
        data, lines = form_data()
        try:
            contract = service.create_contract(entity, data, lines, Actor.for_user(current_user), form_locale())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Contract {contract.reference} created.", "success")
            return redirect(url_for("records.contract_detail", contract_id=contract.id))
    return render_form(entity, None, data, lines, errors)


@bp.get("/contracts/line-row")
@role_required("accountant")
def contract_line_row():
    """One more empty line row for the contract form (the "Add line" button, via HTMX)."""
    number = arg_whole_number("n", 1, minimum=1, maximum=999)
    entity = current_entity()
    codes = entity_codes(entity, include_retired=False) if entity else []
    return render("records/_line_row_added.html", n=number, line={}, errors={}, tax_codes=codes)


@bp.get("/contracts/<int:contract_id>")
@role_required("viewer")
def contract_detail(contract_id: int):
    return render_detail(get_contract(contract_id))


def render_detail(contract: Contract, errors: dict | None = None, end_date: str = ""):
    today = contract.legal_entity.today()
    response = render("records/contract_detail.html", contract=contract, entity=contract.legal_entity,
                      invoices=service.contract_invoices(contract), invoice_total=service.invoice_count(contract),
                      upcoming=service.upcoming_periods(contract, today),
                      amounts=service.period_amounts(contract), today=today,
                      is_overdue=is_overdue, errors=errors or {},
                      end_date=end_date or input_date(today, form_locale()),
                      terms=payment_terms(contract.legal_entity, contract))
    return unprocessable(response) if errors else response


@bp.route("/contracts/<int:contract_id>/edit", methods=["GET", "POST"])
@role_required("accountant")
def contract_edit(contract_id: int):
    contract = get_contract(contract_id)
    data, lines = service.form_values(contract, form_locale())
    errors = {}
    if request.method == "POST":
        data, lines = form_data()
        try:
            changes = service.update_contract(contract, data, lines, Actor.for_user(current_user), form_locale())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Contract {contract.reference} saved." if changes else "Nothing changed.", "success")
            return redirect(url_for("records.contract_detail", contract_id=contract.id))
    return render_form(contract.legal_entity, contract, data, lines, errors)


def _act(contract_id: int, action, message: str, *args):
    contract = get_contract(contract_id)
    try:
        action(contract, *args, Actor.for_user(current_user))
    except ValidationError as error:
        return render_detail(contract, error.errors, request.form.get("end_date", ""))
    flash(message.format(ref=contract.reference), "success")
    return redirect(url_for("records.contract_detail", contract_id=contract.id))


@bp.post("/contracts/<int:contract_id>/pause")
@role_required("accountant")
def contract_pause(contract_id: int):
    return _act(contract_id, service.pause_contract, "Contract {ref} paused: billing runs skip it until resumed.")


@bp.post("/contracts/<int:contract_id>/resume")
@role_required("accountant")
def contract_resume(contract_id: int):
    return _act(contract_id, service.resume_contract,
                "Contract {ref} resumed: the next billing run catches up every due period.")


@bp.post("/contracts/<int:contract_id>/end")
@role_required("accountant")
def contract_end(contract_id: int):
    end = partial(service.end_contract, locale=form_locale())
    return _act(contract_id, end, "Contract {ref} ended.", request.form.get("end_date", ""))


@bp.route("/contracts/import", methods=["GET", "POST"])
@role_required("accountant")
@upload_limit("MAX_CONTENT_LENGTH", "A contracts file this large is imported on the command line, where no upload "
              "limit applies: flask contracts import FILE.")
def contracts_import():
    """The upload is read row by row from its stream (Werkzeug spools a large one to disk); at most
    IMPORT_MAX_ROWS rows, and MAX_CONTENT_LENGTH bytes (larger: 413)."""
    errors: list[str] = []
    count = 0
    max_rows = current_app.config["IMPORT_MAX_ROWS"]
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors, count = ["choose a CSV file to import"], 1
        else:
            try:
                result = import_contracts(upload.stream, Actor.for_user(current_user), max_rows=max_rows)
            except ImportFailed as failure:
                errors, count = failure.errors, failure.count
            else:
                flash(f"Imported {_count(result.contracts, 'contract')} with {_count(result.lines, 'line')}; "
                      f"created {_count(result.customers, 'customer')}.", "success")
                for note in result.notes:
                    flash(f"{note}.", "info")
                return redirect(url_for("records.contracts"))
    response = render("records/contracts_import.html", columns=COLUMNS, errors=errors, problem_count=count,
                      max_rows=max_rows, cli_hint=CLI_HINT)
    return unprocessable(response) if errors else response


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
