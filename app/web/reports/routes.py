"""AR aging: the report page, one customer's open invoices (HTMX row or full page), the CSV export."""
from __future__ import annotations

from datetime import date

from flask import Response, abort, current_app, render_template, request, url_for
from sqlalchemy import select
from werkzeug.routing import BuildError

from app.errors import FieldError
from app.extensions import db, htmx
from app.models import Customer, LegalEntity
from app.reports.aging import (BUCKET_KEYS, BUCKETS, CSV_HEADER, DSO_WINDOW_DAYS, PAGE_SIZE, TOP_CUSTOMERS,
                               aging_csv_stream, aging_page, aging_slice, csv_filename, customer_open_invoices,
                               default_as_of)
from app.reports.chart import bar_chart
from app.web.decorators import role_required
from app.records.validation import parse_date
from flask_login import current_user

from app.web.input import arg_search, arg_whole_number, bad_request
from app.web.helpers import (csv_download, csv_format, current_entity, entity_record_or_404, export_links, input_date,
                             render)
from app.web.reports import bp


def _as_of(entity: LegalEntity) -> tuple[date, str, str | None]:
    """The as-of date of the request (default: today in the entity's time zone), its text as the field shows it
    (in the entity's locale: 26.11.2026 for de_DE), an error. ISO (2026-11-26) is read too: the links use it."""
    text = request.args.get("as_of", "").strip()
    if not text:
        today = default_as_of(entity)
        return today, input_date(today, entity.locale), None
    try:
        as_of = parse_date(text, entity.locale)
    except FieldError as error:
        return default_as_of(entity), text, f"As-of date: {error}."
    return as_of, input_date(as_of, entity.locale), None


def _entity() -> LegalEntity | None:
    """The legal entity picked by its code (`?entity=DE01`), else the user's current one."""
    code = request.args.get("entity", "").strip()
    if not code:
        return current_entity()
    entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == code))
    if entity is None or not current_user.sees_entity(entity.id):
        abort(Response(render_template("errors/404.html", reason=f"There is no legal entity with the code “{code}”."),
                       404))
    return entity


def invoice_url(invoice_id: int) -> str | None:
    """A link to the invoice when the Records area has an invoice page."""
    if "records.invoice_detail" not in current_app.view_functions:
        return None
    try:
        return url_for("records.invoice_detail", invoice_id=invoice_id)
    except BuildError:
        return None


def _with_status(response: Response, error: str | None) -> Response:
    # HTMX swaps only 2xx answers: an HTMX request gets its error message with 200.
    if error and not htmx:
        response.status_code = 400
    return response


def _table_context(entity: LegalEntity, as_of: date) -> dict:
    """What the customer rows of the report need (the page's table and a further slice alike)."""
    # /reports/aging/customer: each row appends /<id>?as_of=…&currency=… (url_for per row is slow)
    return dict(entity=entity, as_of=as_of, as_of_iso=as_of.isoformat() if as_of else "", bucket_keys=BUCKET_KEYS,
                buckets=BUCKETS, page_size=PAGE_SIZE,
                customer_path=url_for("reports.aging_customer", customer_id=0).rsplit("/", 1)[0])


@bp.get("/aging")
@role_required("viewer")
def aging():
    entity = _entity()
    as_of, as_of_text, error = (None, "", None) if entity is None else _as_of(entity)
    search = arg_search()
    report = aging_page(entity, as_of, search) if entity is not None and not error else None
    charts = {}
    if report is not None:
        charts = {s.currency: bar_chart([(b.key, b.label, s.totals.amounts[b.key]) for b in BUCKETS])
                  for s in report.sections}
    response = render("reports/aging.html", "reports/_aging_report.html", **_table_context(entity, as_of),
                      as_of_text=as_of_text, error=error, report=report, charts=charts, search=search,
                      dso_days=DSO_WINDOW_DAYS, top_n=TOP_CUSTOMERS,
                      downloads=export_links("reports.aging_csv", entity, {
                          "entity": entity.code if entity else None, "as_of": as_of.isoformat() if as_of else None}))
    return _with_status(response, error)


def _entity_and_as_of() -> tuple[LegalEntity, date]:
    """The legal entity and as-of date of a request that needs both: 404 without an entity, 400 (plain text) for a
    bad date."""
    entity = _entity()
    if entity is None:
        abort(404)
    as_of, _text, error = _as_of(entity)
    if error:
        abort(Response(error + "\n", status=400, mimetype="text/plain"))
    return entity, as_of


@bp.get("/aging/rows")
@role_required("viewer")
def aging_rows():
    """A further slice of one currency's customers: table rows for HTMX ("Show more"), else a page of them."""
    entity, as_of = _entity_and_as_of()
    currency = request.args.get("currency", "").strip().upper()
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        bad_request("currency: give the ISO 4217 code of the slice's currency, e.g. currency=EUR")
    offset = arg_whole_number("offset", 0)
    search = arg_search()
    section = aging_slice(entity, as_of, currency=currency, search=search, offset=offset).get(currency)
    return render("reports/aging_rows.html", "reports/_aging_rows.html", **_table_context(entity, as_of),
                  section=section, currency=currency, search=search, offset=offset)


@bp.get("/aging.csv")
@role_required("viewer")
def aging_csv():
    entity, as_of = _entity_and_as_of()
    fmt = csv_format(entity)
    return csv_download(csv_filename(entity.code, as_of), CSV_HEADER, aging_csv_stream(entity, as_of), fmt)


@bp.get("/aging/customer/<int:customer_id>")
@role_required("viewer")
def aging_customer(customer_id: int):
    customer = entity_record_or_404(Customer, customer_id)
    entity = customer.legal_entity
    as_of, as_of_text, error = _as_of(entity)
    currency = request.args.get("currency", "").strip().upper()
    currency = currency if len(currency) == 3 and currency.isascii() and currency.isalpha() else None
    invoices = [] if error else customer_open_invoices(customer.id, as_of, currency)
    response = render("reports/aging_customer.html", "reports/_aging_customer.html", customer=customer,
                      entity=entity, as_of=as_of, as_of_text=as_of_text, currency=currency, error=error,
                      invoices=invoices, invoice_url=invoice_url, columns=len(BUCKETS) + 2)
    return _with_status(response, error)
