"""What a request brings in, read in one place before the views see it; bad input is a 400 or a 404.

- Ids in URLs (`<int:invoice_id>`) are read by `IdConverter`: the digits 0-9 only (Python's `\\d`
  also matches '²' and '١٢') and at most 2,147,483,647, PostgreSQL's integer. Anything else does
  not match the route: 404, as for an id that does not exist.
- Other path segments (`<key>`, `<name>`) never match a control character: 404.
- Before any view runs, a control character in a query argument (its name or value), or a NUL in a
  posted form, is refused with a 400 that names the argument. PostgreSQL cannot store NUL in text,
  and no query argument of ours holds a tab or a line break.
- Every view that takes a file says its limit with `@upload_limit(config_key, advice)`: MAX_CONTENT_LENGTH
  (the app-wide limit of any request) or its own, larger one ("STATEMENT_MAX_BYTES"), which the request gets
  before anything reads the form (CSRF's check included). A larger upload is the 413 page with the view's
  limit and advice (what to do with a larger file). tests/web/test_upload_limits.py checks that every view
  reading `request.files` has one.
- Views read typed query arguments through `arg_page`, `arg_id`, `arg_search`, `arg_choice`, `arg_sort`,
  `arg_cursor` (a list's order and page link: a bad one is a 400 naming the argument): a value
  that cannot be read is a 400 with a message (`page: '²' is not a whole number (use the digits
  0-9)`), rather than an unhandled error deeper down. The rules are `app.records.validation`'s.
"""
from __future__ import annotations

from typing import Iterable, NoReturn

from flask import Flask, abort, current_app, request
from werkzeug.routing import IntegerConverter, UnicodeConverter

from app.records import validation as v

SEARCH_MAX = 200  # characters of a search box: more finds nothing a person typed


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: 1 to 2,147,483,647, written with the digits 0-9 only."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = v.ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class SegmentConverter(UnicodeConverter):
    """The default converter (`<key>`): one path segment without control characters."""

    def __init__(self, map, minlength: int = 1, maxlength: int | None = None, length: int | None = None) -> None:
        super().__init__(map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]")


def bad_request(message: str) -> NoReturn:
    """Answer 400 with `message` on the error page (a person can act on it)."""
    abort(400, description=message)


def refuse_control_characters() -> None:
    """Before every request: no control character in a query argument (leading and trailing
    whitespace aside: the readers strip it), no NUL in a posted form."""
    for name, value in request.args.items(multi=True):
        for text, part in ((name, "name"), (value.strip(), "value")):
            found = v.control_character(text)
            if found is not None:
                position, character = found
                shown = name if part == "value" else name.encode("unicode_escape").decode("ascii")
                bad_request(f"The address's argument “{shown}” has {v.character_name(character)} in its {part} "
                            f"(character {position}); remove it and try again.")
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "\\x00")
                bad_request(f"The form's field “{shown}” has a NUL character, which no field takes; "
                            "remove it and send the form again.")


def _arg(name: str) -> str | None:
    value = request.args.get(name)
    return None if value is None else value.strip()


def arg_whole_number(name: str, default: int, *, minimum: int = 0, maximum: int = v.ID_MAX) -> int:
    """The query argument `name` as a whole number in minimum..maximum; absent or empty: `default`."""
    text = _arg(name)
    if not text:
        return default
    try:
        return v.parse_whole_number(text, name, minimum=minimum, maximum=maximum)
    except v.FieldError as error:
        bad_request(f"{name}: {error}.")


def arg_page(name: str = "page") -> int:
    """The page number of a list: 1 (absent) up to 2,147,483,647 (beyond the last page, an empty page)."""
    return arg_whole_number(name, 1, minimum=1)


CURSOR_MAX = 1000  # characters of a page link's cursor: ours are far shorter


def arg_sort(ordering, name: str = "sort") -> str:
    """A list's order (`due`, `-due` descending; app/paging.py): one of `ordering`'s, or its default when absent."""
    text = _arg(name)
    if not text:
        return ordering.default
    if ordering.find(text) is None:
        bad_request(f"{name}: {text[:40]!r} is not an order of this list; sort by "
                    f"{', '.join(ordering.choices())} (a leading - sorts descending).")
    return text


def arg_cursor(name: str) -> str | None:
    """A page link's cursor (`?after=`, `?before=`), or None when absent or empty; app/paging.py reads it."""
    text = _arg(name)
    if text and len(text) > CURSOR_MAX:
        bad_request(f"{name}: this page link is {len(text)} characters long, too long to be one of ours.")
    return text or None


def arg_id(name: str) -> int | None:
    """A record id in the query string (`?customer=12`), or None when absent or empty."""
    text = _arg(name)
    if not text:
        return None
    try:
        return v.parse_id(text, name)
    except v.FieldError as error:
        bad_request(f"{name}: {error}.")


def arg_search(name: str = "q") -> str:
    """A search box's text, stripped; empty when absent. At most SEARCH_MAX characters."""
    text = _arg(name) or ""
    if len(text) > SEARCH_MAX:
        bad_request(f"{name}: the search text is {len(text)} characters long; search for at most {SEARCH_MAX}.")
    return text


def arg_choice(name: str, choices: Iterable[str]) -> str:
    """One of `choices`, or "" (no filter) for an absent or unknown value."""
    text = _arg(name) or ""
    return text if text in choices else ""


# ------------------------------------------------------------------ uploads beyond MAX_CONTENT_LENGTH
FORM_ROOM = 64 * 1024  # the multipart boundaries and the other fields of an upload form


def upload_limit(config_key: str, advice: str):
    """The view takes uploads of up to `app.config[config_key]` bytes (MAX_CONTENT_LENGTH or a larger limit of
    its own); `advice` tells a person with a larger file what to do (shown with the 413)."""

    def decorator(view):
        view.upload_limit = (config_key, advice)
        return view

    return decorator


def upload_limit_of(endpoint: str | None) -> tuple[str, int, str] | None:
    """(setting, bytes, advice) of an `@upload_limit` view, else None."""
    found = getattr(current_app.view_functions.get(endpoint or ""), "upload_limit", None)
    if found is None:
        return None
    config_key, advice = found
    return config_key, int(current_app.config[config_key]), advice


def raise_upload_limit(_endpoint: str | None, _values: dict | None) -> None:
    """Give the request its view's own upload limit. A URL value preprocessor, because those run before the
    before-request functions, which read the form (the CSRF check, `refuse_control_characters`)."""
    found = upload_limit_of(request.endpoint)
    if found is not None and found[0] != "MAX_CONTENT_LENGTH":
        request.max_content_length = found[1] + FORM_ROOM


def init_app(app: Flask) -> None:
    """Register the converters (before any route is added) and the checks that run before every view."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["default"] = SegmentConverter
    app.url_map.converters["string"] = SegmentConverter
    app.url_value_preprocessor(raise_upload_limit)
    app.before_request(refuse_control_characters)
