"""Bank statements as CSV, for banks (or exports) that offer neither camt.053 nor MT940.

Columns (a header row, names as here, order free; extra columns are ignored):

    booking_date, value_date, amount, currency, counterparty_name, counterparty_iban, remittance, reference,
    end_to_end_id

- booking_date (required) and value_date (optional) as YYYY-MM-DD;
- amount signed: positive money in (credit), negative money out (debit); a dot for decimals, or a decimal
  comma when the delimiter is `;` (as a German spreadsheet saves it: `-1.234,56`);
- currency: ISO 4217 code; reference: the bank's reference of the booking (used for deduplication);
- UTF-8 (a BOM is fine), delimiter `,` or `;` (sniffed from the header row).
The file names no account and no statement: `account_iban` is None (the caller uses the entity's) and the
statement id is the first 16 hex of the content's sha256. An RF reference in the remittance is taken as the
creditor reference.
"""
from __future__ import annotations

import csv
import hashlib
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from app.banking.statements import Entry, Statement, StatementError, finish, too_many
from app.billing.money import CurrencyError, minor_unit
from app.billing.references import parse_creditor_references
from app.records.csv_stream import NotReadable, Problems, text_lines

COLUMNS = ("booking_date", "value_date", "amount", "currency", "counterparty_name", "counterparty_iban",
           "remittance", "reference", "end_to_end_id")
REQUIRED = ("booking_date", "amount", "currency")
_GROUPED_COMMA = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")


def read(data: bytes, *, max_entries: int) -> Statement:
    try:
        lines = list(text_lines(data.splitlines(keepends=True)))
    except NotReadable as error:
        raise StatementError([error.message]) from None
    header = lines[0] if lines else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    rows = csv.reader(lines, delimiter=delimiter)
    names = [name.strip().lower() for name in next(rows, [])]
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        raise StatementError([f"unknown format: expected camt.053 XML, MT940 text or CSV with columns "
                              f"{', '.join(COLUMNS)} (missing: {', '.join(missing)})"])
    problems = Problems()
    entries: list[Entry] = []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(entries) >= max_entries:
            raise too_many(max_entries)
        entry = _entry(dict(zip(names, (cell.strip() for cell in row))), number, delimiter, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise StatementError(problems.messages())
    days = [entry.booking_date for entry in entries]
    currencies = {entry.currency for entry in entries}
    return Statement(
        format="csv", version=None, statement_id=hashlib.sha256(data).hexdigest()[:16], sequence=None,
        account_iban=None, account_currency=currencies.pop() if len(currencies) == 1 else None, created_at=None,
        from_date=min(days, default=None), to_date=max(days, default=None), opening_balance=None,
        closing_balance=None, entries=finish(None, entries))


def _entry(row: dict, number: int, delimiter: str, problems: Problems) -> Entry | None:
    before = problems.count
    booking_date = _day(row.get("booking_date", ""), "booking_date", number, problems, required=True)
    value_date = _day(row.get("value_date", ""), "value_date", number, problems, required=False)
    amount = _amount(row.get("amount", ""), number, delimiter, problems)
    currency = row.get("currency", "").upper()
    try:
        minor_unit(currency)
    except CurrencyError:
        problems.add(number, f"line {number}: currency {currency or '(empty)'!r} is not an ISO 4217 currency")
    if problems.count > before:
        return None
    remittance = row.get("remittance", "")
    end_to_end = row.get("end_to_end_id") or None
    if end_to_end and end_to_end.upper() == "NOTPROVIDED":
        end_to_end = None
    references = parse_creditor_references(remittance)
    return Entry(fingerprint="", booking_date=booking_date, value_date=value_date, amount=abs(amount),
                 currency=currency, direction="credit" if amount > 0 else "debit",
                 bank_reference=row.get("reference") or None, end_to_end_id=end_to_end,
                 creditor_reference=references[0] if references else None, remittance=remittance,
                 counterparty_name=row.get("counterparty_name") or None,
                 counterparty_iban=(row.get("counterparty_iban") or "").replace(" ", "").upper() or None)


def _day(text: str, column: str, number: int, problems: Problems, *, required: bool) -> date | None:
    if not text:
        if required:
            problems.add(number, f"line {number}: {column} is empty")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.add(number, f"line {number}: {column} {text!r} is not a date (use YYYY-MM-DD)")
        return None


def _amount(text: str, number: int, delimiter: str, problems: Problems) -> Decimal:
    written = text.replace(" ", "")
    if delimiter == ";" and "," in written:
        written = written.replace(".", "").replace(",", ".") if _GROUPED_COMMA.match(written) or \
            written.count(",") == 1 else written
    try:
        value = Decimal(written)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problems.add(number, f"line {number}: amount {text!r} is not a number")
        return Decimal(0)
    if value == 0:
        problems.add(number, f"line {number}: amount is zero (positive for money in, negative for money out)")
    return value
