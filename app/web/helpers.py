"""Shared view helpers: the current legal entity, full page or HTMX partial, pagination, formatting."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import (Flask, Response, abort, current_app, flash, g, has_request_context, make_response, redirect,
                   render_template, request, stream_with_context)
from flask_login import current_user
from sqlalchemy import select

from app.billing.money import minor_unit, round_money
from app.billing.references import format_creditor_reference
from app.extensions import db, htmx
from app import locale_input
from app.errors import CursorError
from app.formatting import fast_money, format_number, format_percent, format_unit_price
from app.models import LegalEntity
from app.paging import read_page
from app.schedules.sync import sync_after_change
from app.spreadsheets import PLAIN, CsvFormat, csv_chunks, excel_format, offers_excel
from app.web.input import arg_cursor, arg_sort, bad_request
from app.wording import event_words


# ------------------------------------------------------------------ the current legal entity
def current_entity() -> LegalEntity | None:
    """The legal entity the user works on: their last choice among the entities they may see, else the first."""
    if "current_entity" not in g:
        entity = None
        if current_user.is_authenticated:
            chosen = current_user.current_legal_entity_id
            if chosen and current_user.sees_entity(chosen):
                entity = db.session.get(LegalEntity, chosen)
            if entity is None:
                entity = db.session.scalar(_visible(select(LegalEntity)).order_by(LegalEntity.code).limit(1))
            current_user.working_entity_id = entity.id if entity else None
        g.current_entity = entity
    return g.current_entity


def _visible(query):
    """`query` of legal entities narrowed to those the user may see."""
    visible = current_user.visible_entity_ids()
    return query if visible is None else query.where(LegalEntity.id.in_(visible or [0]))


def all_entities() -> list[LegalEntity]:
    """The legal entities the user may see (the entity switcher)."""
    return list(db.session.scalars(_visible(select(LegalEntity)).order_by(LegalEntity.code)))


def entity_record_or_404(model, record_id: int, role: str | None = None, key: str = "legal_entity_id"):
    """A record of a legal entity (its `key`: `legal_entity_id`, or `id` for a legal entity itself) by id, when the
    user holds `role` — by default the role the view requires (`role_required`) — in that legal entity; else 404,
    as if it did not exist."""
    record = db.session.get(model, record_id)
    needed = role or g.get("required_role", "viewer")
    if record is None or not current_user.can(needed, getattr(record, key)):
        abort(404)
    return record


# ------------------------------------------------------------------ full page or partial
def render(page: str, partial: str | None = None, **context: Any) -> Response:
    """Render the full page, or for an HTMX request (not a boosted navigation) only its partial.

    The page template includes the partial, so both answers show the same thing; the response
    says `Vary: HX-Request` so that caches keep them apart.
    """
    template = partial if partial and htmx and not htmx.boosted and not htmx.history_restore_request else page
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def go_to(url: str) -> Response:
    """Send the browser to `url`: HX-Redirect for an HTMX request, else 303 See Other."""
    if htmx:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


# ------------------------------------------------------------------ pagination
@dataclass
class Page:
    """A page of a list held in memory (the mailbox's files); database lists page by key: `keyset_page`."""
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def keyset_page(query, ordering, total: tuple[int, bool] | None = None):
    """Page `query` (a select) by key (app/paging.py) in the order of `?sort=` (one of `ordering`'s; absent: its
    default) from the cursor `?after=` or `?before=`. An unknown sort, both cursors, or a cursor that cannot be
    read is a 400 naming the argument (app.web.input)."""
    sort = arg_sort(ordering)
    after, before = arg_cursor("after"), arg_cursor("before")
    if after and before:
        bad_request("after and before: give one page link, not both.")
    try:
        return read_page(query, ordering, sort, current_app.secret_key, after, before, total=total)
    except CursorError as error:
        bad_request(f"{'before' if before else 'after'}: this page link cannot be used: {error}.")


# ------------------------------------------------------------------ the locale: formatting and input
def entity_locale() -> str:
    """The working legal entity's locale (en_US without one): pages show it, and forms read what is typed in it."""
    # Only for a signed-in user: current_entity() remembers its answer in `g`, which a test's app context keeps
    # across requests, so an answer from before the login must not be remembered.
    entity = current_entity() if has_request_context() and current_user.is_authenticated else None
    return entity.locale if entity and entity.locale else "en_US"


def form_locale() -> str:
    """The locale a form's numbers and dates are typed in: the working legal entity's (app/locale_input.py)."""
    return entity_locale()



# ------------------------------------------------------------------ CSV exports
CSV_FORMATS = ("csv", "excel")


def csv_format(entity: LegalEntity) -> CsvFormat:
    """The export's format from `?format=`: `csv` (default: `,`, dot decimals, UTF-8) or `excel` (what Excel in
    the entity's locale opens: app/spreadsheets.py); another value is a 400 that says which there are."""
    name = request.args.get("format", "").strip() or "csv"
    if name not in CSV_FORMATS:
        abort(Response(f"format: {name[:40]!r} is not one of {', '.join(CSV_FORMATS)}\n", 400, mimetype="text/plain"))
    return excel_format(entity.locale) if name == "excel" else PLAIN


def csv_download(filename: str, header, rows, fmt: CsvFormat = PLAIN) -> Response:
    """A CSV attachment streamed as it is written (`rows` may be a generator over a query): every cell by the
    rules of app/spreadsheets.py (text made safe for spreadsheets, plain numbers, ISO dates)."""
    if fmt.suffix:
        filename = filename.removesuffix(".csv") + fmt.suffix + ".csv"
    response = Response(stream_with_context(csv_chunks(header, rows, fmt)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_links(endpoint: str, legal_entity: LegalEntity | None, args: dict) -> list[tuple[str, str]]:
    """(label, url) of a page's downloads with `args`: the CSV, and for a decimal-comma locale the
    Excel-friendly one."""
    from flask import url_for

    if legal_entity is None:
        return []
    args = {name: value for name, value in args.items() if value not in (None, "")}
    links = [("Download CSV", url_for(endpoint, **args))]
    if offers_excel(legal_entity.locale):
        links.append(("Excel-friendly CSV (;)", url_for(endpoint, **args, format="excel")))
    return links


# ------------------------------------------------------------------ formatting
def money(amount: Decimal | str | None, currency: str, locale: str | None = None) -> str:
    """58,53 € for de_DE; the entity's locale by default (Babel's output, cached per locale)."""
    if amount is None:
        return ""
    return fast_money(Decimal(amount), currency, locale or entity_locale())


def number(value: Any, locale: str | None = None) -> str:
    """A quantity or count: 2,5 and 1.234 for de_DE, every decimal kept."""
    return format_number(value, locale or entity_locale())


def percent(rate: Decimal | None, locale: str | None = None) -> str:
    """A rate: 19,45 % for de_DE (the same on pages, in e-mails and in PDFs)."""
    return "" if rate is None else format_percent(rate, locale or entity_locale())


def unit_price(amount: Decimal | None, currency: str, locale: str | None = None) -> str:
    """A unit price: 49,00 € for de_DE, its extra decimals kept (0,123456 €)."""
    return "" if amount is None else format_unit_price(amount, currency, locale or entity_locale())


def input_number(value: Decimal | None, min_digits: int = 0) -> str:
    """A number as a form field shows it, in the form's locale: 49,00 for de_DE (app/locale_input.py)."""
    return locale_input.input_number(value, form_locale(), min_digits)


def input_amount(value: Decimal | None, currency: str) -> str:
    """An amount as a form field shows it: rounded to the currency's digits, 58,53 for de_DE."""
    if value is None:
        return ""
    return locale_input.input_number(round_money(Decimal(value), currency), form_locale(), minor_unit(currency))


def input_date(value: date | None, locale: str | None = None) -> str:
    """A date as a form field shows it, in the form's locale (or `locale`): 31.03.2026 for de_DE."""
    return locale_input.input_date(value, locale or form_locale())


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", tz: str | None = None) -> str:
    """A UTC timestamp shown in `tz`, by default the current entity's time zone."""
    if value is None:
        return ""
    if tz is None:
        entity = current_entity()
        tz = entity.timezone if entity else "UTC"
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def iso_date(value: date | None) -> str:
    return value.isoformat() if value else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def page_lang() -> str:
    """The page's language, <html lang="de-DE">: the working legal entity's locale."""
    return entity_locale().replace("_", "-")


def number_hint() -> str:
    """What a number field's hint says in the form's locale: "e.g. 1.234,56 or 49.00 (1.234 reads as 1234)"."""
    return locale_input.number_hint(form_locale())


def date_placeholder(locale: str | None = None) -> str:
    """How a date field is filled in the form's locale (or `locale`): DD.MM.YYYY for de_DE."""
    return locale_input.date_form(locale or form_locale()).placeholder


def time_hint() -> str:
    """How a time of day is typed in the form's locale: a 24-hour clock where the locale uses one (de_DE), and
    "6:30 PM" as well where it writes a 12-hour one (en_US); parse_time_text reads both."""
    if locale_input.uses_24_hour_clock(form_locale()):
        return "HH:MM on a 24-hour clock, e.g. 06:00 or 18:30"
    return "e.g. 6:00 AM or 6:30 PM (or 18:30)"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(event_words=event_words, money=money, number=number, percent=percent, unit_price=unit_price,
                                 input_number=input_number, input_amount=input_amount, input_date=input_date,
                                 local_time=local_time, iso_date=iso_date, duration=duration,
                                 creditor_reference=format_creditor_reference)
    # Globals, not context: the form macros (imported without context) use them too.
    app.jinja_env.globals.update(page_lang=page_lang, number_hint=number_hint, date_placeholder=date_placeholder,
                                 time_hint=time_hint)

    @app.context_processor
    def inject() -> dict[str, Any]:
        if not has_request_context() or not current_user.is_authenticated:  # e.g. documents in a worker
            return {}
        from app.models.accounts import ROLE_RANK

        entity = current_entity()
        held = current_user.role_in(entity.id if entity else None) or current_user.role
        allowed = [role for role, rank in ROLE_RANK.items() if held and rank <= ROLE_RANK[held]]
        if current_user.is_org_admin:
            allowed.append("org_admin")
        from app.models.types import utcnow

        return {"current_entity": current_entity(), "entities": all_entities(), "allowed_roles": allowed,
                "endpoints": set(app.view_functions), "now_utc": utcnow()}


def schedules_synced() -> None:
    """After a committed change to schedules: update rq-scheduler, and say so when it could not be reached."""
    warning = sync_after_change()
    if warning:
        flash(warning[0].upper() + warning[1:] + ".", "error")
