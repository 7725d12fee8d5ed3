"""Bank statements as CSV, for banks (or exports) that offer neither camt.053 nor MT940.

Columns (a header row, names as here, order free; extra columns are ignored):

    booking_date, value_date, amount, currency, counterparty_name, counterparty_iban, remittance, reference,
    end_to_end_id

- booking_date (required) and value_date (optional) as YYYY-MM-DD;
- amount signed: positive money in (credit), negative money out (debit); the decimal separator of the
  entity's locale, checked per file (a German spreadsheet's `-1.234,56`, or `1,234.56`; app/spreadsheets.py);
- currency: ISO 4217 code; reference: the bank's reference of the booking (used for deduplication);
- UTF-8 (with or without a BOM) or Windows-1252, delimiter `,` `;` or tab (found from the header row), read by
  the one reader of uploaded spreadsheets, `app/spreadsheets.py`.
The file names no account and no statement: `account_iban` is None (the caller uses the entity's) and the
statement id is the first 16 hex of the content's sha256. An RF reference in the remittance is taken as the
creditor reference.
"""
from __future__ import annotations

import csv
import hashlib
from datetime import date
from decimal import Decimal, InvalidOperation

from app.banking.statements import AMOUNT_MAX, Entry, Statement, finish, too_many
from app.billing.money import minor_unit
from app.billing.references import parse_creditor_references
from app.errors import CurrencyError, NotReadable, NumberError, StatementError
from app.records.csv_stream import Problems
from app.spreadsheets import Decimals, SheetReader, header_problem

COLUMNS = ("booking_date", "value_date", "amount", "currency", "counterparty_name", "counterparty_iban",
           "remittance", "reference", "end_to_end_id")
REQUIRED = ("booking_date", "amount", "currency")


def read(data: bytes, *, max_entries: int, locale: str | None = None) -> Statement:
    try:
        sheet = SheetReader(data.splitlines(keepends=True), expected=COLUMNS, locale=locale)
    except NotReadable as error:
        raise StatementError([error.message]) from None
    names = sheet.header
    if header_problem(names, REQUIRED) is not None:
        missing = [column for column in REQUIRED if column not in names]
        why = "" if len(names) > 1 else " — no ',', ';' or tab between the column names"
        raise StatementError([f"unknown format: expected camt.053 XML, MT940 text or CSV with columns "
                              f"{', '.join(COLUMNS)} (missing: {', '.join(missing)}{why})"])
    problems = Problems()
    entries: list[Entry] = []
    try:
        for number, row in sheet:
            if not any(cell.strip() for cell in row):
                continue
            if len(entries) >= max_entries:
                raise too_many(max_entries)
            entry = _entry(dict(zip(names, (cell.strip() for cell in row))), number, sheet.decimals, problems)
            if entry is not None:
                entries.append(entry)
    except NotReadable as error:
        problems.add(error.line, error.message)
    except csv.Error as error:
        problems.add(sheet.line_num, f"line {sheet.line_num}: not a readable CSV row ({error}); nothing after it "
                                     "was read")
    if problems:
        raise StatementError(problems.messages())
    days = [entry.booking_date for entry in entries]
    currencies = {entry.currency for entry in entries}
    return Statement(
        format="csv", version=None, statement_id=hashlib.sha256(data).hexdigest()[:16], sequence=None,
        account_iban=None, account_currency=currencies.pop() if len(currencies) == 1 else None, created_at=None,
        from_date=min(days, default=None), to_date=max(days, default=None), opening_balance=None,
        closing_balance=None, entries=finish(None, entries), notes=tuple(sheet.found.notes()))


def _entry(row: dict, number: int, decimals: Decimals, problems: Problems) -> Entry | None:
    before = problems.count
    booking_date = _day(row.get("booking_date", ""), "booking_date", number, problems, required=True)
    value_date = _day(row.get("value_date", ""), "value_date", number, problems, required=False)
    amount = _amount(row.get("amount", ""), number, decimals, problems)
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


def _amount(text: str, number: int, decimals: Decimals, problems: Problems) -> Decimal:
    try:
        value = Decimal(decimals.read(text, number, "amount")) if text.strip() else None
    except NumberError as error:
        problems.add(number, f"line {number}: amount {error}")
        return Decimal(0)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problems.add(number, f"line {number}: amount {text!r} is not a number")
        return Decimal(0)
    if value == 0:
        problems.add(number, f"line {number}: amount is zero (positive for money in, negative for money out)")
    if abs(value) > AMOUNT_MAX:
        problems.add(number, f"line {number}: amount {text} is larger than Arbill holds ({AMOUNT_MAX})")
    return value
