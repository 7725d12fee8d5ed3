"""ISO 11649 structured creditor references ("RF" references) for invoices.

Every issued invoice carries `creditor_reference(invoice.number)`: "RF", two check digits (ISO 7064
MOD 97-10, computed and checked with python-stdnum) and the invoice number's letters and digits in
upper case, e.g. DE01-2026-000042 → RF73DE012026000042. It is printed on the PDF, written as the
payment reference (BT-83) in the e-invoice, and is what cash application looks for first in a bank
statement's remittance information (`parse_creditor_references`).

ISO 11649 allows at most 21 characters after the check digits. Invoice numbers are
`{prefix}-{YYYY}-{sequence:06d}` and a prefix holds up to 16 letters or digits, so a long prefix
can exceed that. Then the reference keeps only the prefix's first 3 letters or digits, followed by
the year and the sequence: ACMEHOLDINGS01-2026-000042 → RF..ACM2026000042. Within one legal entity
(one prefix, fixed once invoices are numbered) references stay unique: numbers that fit are the
prefix + a 4-digit year + the sequence; shortened ones are the same 3 characters + year + sequence;
and a number that fits cannot equal a shortened one because sequences have at least 6 and at most
10 digits (the sequence column's range). A number in another shape that is too long keeps its last
21 letters and digits.

Pure functions over strings: no database, no clock.
"""
from __future__ import annotations

import re

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

MAX_BODY = 21          # characters after "RF" and the check digits (ISO 11649)
SHORT_PREFIX = 3       # prefix characters kept when a number is too long for MAX_BODY

_INVOICE_NUMBER = re.compile(r"^(?P<prefix>.*)-(?P<year>\d{4})-(?P<sequence>\d+)$")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
# "RF" + check digits, not glued to a preceding letter or digit; then either the rest written
# without spaces, or groups of up to 4 characters each after one space (the printed form).
_CANDIDATE = re.compile(
    r"(?<![A-Z0-9])RF(?P<check>\d{2})"
    r"(?:(?P<compact>[A-Z0-9]{1,21})|(?P<groups>(?: [A-Z0-9]{1,4})+))"
    r"(?![A-Z0-9])",
    re.IGNORECASE,
)


def _alnum(text: str) -> str:
    return _NOT_ALNUM.sub("", text.upper())


def reference_body(number: str) -> str:
    """The part of the reference after the check digits: the number's letters and digits, or the
    documented shortened form when they exceed 21 characters."""
    body = _alnum(number)
    if not body:
        raise ValueError(f"invoice number {number!r} has no letters or digits for a creditor reference")
    if len(body) <= MAX_BODY:
        return body
    parts = _INVOICE_NUMBER.match(number.strip().upper())
    if parts:
        short = _alnum(parts["prefix"])[:SHORT_PREFIX] + parts["year"] + parts["sequence"]
        if len(short) <= MAX_BODY:
            return short
    return body[-MAX_BODY:]


def creditor_reference(number: str) -> str:
    """The ISO 11649 reference of an invoice number, compact: DE01-2026-000042 → 'RF73DE012026000042'."""
    body = reference_body(number)
    return "RF" + mod_97_10.calc_check_digits(body + "RF") + body


def format_creditor_reference(reference: str) -> str:
    """For print: groups of 4 characters, 'RF18 5390 0754 7034'."""
    return iso11649.format(reference)


def parse_creditor_references(text: str | None) -> list[str]:
    """The valid RF references in free text (remittance information), compact and upper case, in
    order of appearance, each once. Written with or without spaces in groups of 4, in any case;
    a reference whose check digits do not match is not returned. When printed groups run on into
    other short words ("RF18 5390 0754 7034 bis"), the longest run of groups that checks wins."""
    found: list[str] = []
    for match in _CANDIDATE.finditer(text or ""):
        head = "RF" + match["check"]
        if match["compact"]:
            candidates = [head + match["compact"]]
        else:
            groups = match["groups"].split()
            # a group shorter than 4 can only be the last one
            end = next((i + 1 for i, g in enumerate(groups) if len(g) < 4), len(groups))
            groups = groups[:end]
            candidates = [head + "".join(groups[:n]) for n in range(len(groups), 0, -1)]
        for candidate in candidates:
            candidate = candidate.upper()
            if len(candidate) <= 4 + MAX_BODY and iso11649.is_valid(candidate):
                if candidate not in found:
                    found.append(candidate)
                break
    return found
