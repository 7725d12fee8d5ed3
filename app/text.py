"""Rules for the characters of plain text, shared by the field rules (app/records/validation.py) and the
billing core, which must not import the records layer: pure, no Flask, no SQLAlchemy.
"""
from __future__ import annotations

import re

# C0 and C1 control characters (NUL, TAB, CR, LF, ESC, DEL, NEL …) and the Unicode line and paragraph
# separators: none belongs in a one-line value. In an e-mail header CR/LF end the header, PostgreSQL
# refuses NUL in text, and a tab or a line break in a name shows up on an invoice as a broken line.
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A multi-line text (an address) keeps its line breaks (CR, LF) and tabs, and refuses the rest.
_NOT_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_CHARACTER_NAMES = {"\x00": "a NUL character", "\t": "a tab", "\n": "a line break (LF)",
                    "\r": "a line break (CR)", "\x85": "a line break (NEL, U+0085)",
                    "\u2028": "a line separator (U+2028)", "\u2029": "a paragraph separator (U+2029)"}


def character_name(character: str) -> str:
    """How an error message names a character: "a line break (LF)", "the control character U+001B"."""
    return _CHARACTER_NAMES.get(character, f"the control character U+{ord(character):04X}")


def control_character(text: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """The first character `text` must not contain, as (1-based position, character), or None."""
    match = (_NOT_MULTILINE if multiline else _NOT_ONE_LINE).search(text)
    return (match.start() + 1, match.group()) if match else None


def check_placeholders(template: str, allowed: tuple[str, ...]) -> None:
    """Refuse a text template (str.format) with a stray brace or a {placeholder} not in `allowed`, naming it;
    ValueError, as an agent setting's validator raises."""
    import string

    try:
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise ValueError(f"the template has a stray brace: {error}") from None
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}: use {', '.join('{' + p + '}' for p in allowed)}")


# A spreadsheet program reads a cell that starts with one of these as a formula (or, for tab and CR, may
# drop them and read what follows as one): =HYPERLINK(…) or @SUM(…) in a customer's name would run on the
# finance team's machine when they open an export.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """A text cell of a CSV export, safe to open in a spreadsheet (OWASP "CSV injection"): a value that
    starts with = + - @, a tab or a CR gets a leading apostrophe, which the spreadsheet shows as text.
    Only for text: amounts are written with `format(amount, "f")` and stay numbers (-12.50)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
