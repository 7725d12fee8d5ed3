"""SWIFT MT940 statements as German banks send them, read with the mt-940 package.

Tags: :20: (statement reference), :25: (account: an IBAN, or BLZ/account number — a German one is turned into
its IBAN), :28C: (statement/sequence number), :60F:/:60M: (opening balance), :61: (value date, booking date,
C/D/RC/RD mark, amount, transaction type, customer reference, bank reference), :86: and :62F:/:62M: (closing
balance). A SWIFT envelope ({1:...}{4: ... -}), CRLF line ends and `-` end-of-message lines are fine.

The :86: field, when structured (`166?00...`): ?00 posting text, ?10 primanota, ?20–?29 and ?60–?63
remittance (fixed-width pieces, joined without spaces), ?30 BIC (or BLZ), ?31 IBAN (or account), ?32–?33 name,
?34 return reason; inside the remittance the SEPA keywords EREF+ (end-to-end id), SVWZ+ (the remittance text
proper), ABWA+ (the payer's name when it differs), IBAN+, BIC+ and RTRN+ (return reason). The creditor
reference is the first valid ISO 11649 RF reference in SVWZ, else in EREF. An unstructured :86: is the
remittance as it stands. The three-digit code in front (GVC) is the bank transaction code.

Direction is the money's way on the account: C and RD (a reversed debit) are credits, D and RC debits;
RC/RD are reversals. A file may hold several statements (:20: blocks) of one account: their entries are read
in order; blocks for different accounts are refused.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import mt940 as mt940_package

from app.banking.statements import Entry, Statement, finish, too_many
from app.billing.money import minor_unit
from app.billing.references import parse_creditor_references
from app.errors import CurrencyError, StatementError

_OPTIONS = mt940_package.Options.all()
_LINE_61 = re.compile(r"^(?P<value>\d{6})(?P<booked>\d{4})?(?P<mark>R?[CD])(?P<funds>[A-Z])?"
                      r"(?P<amount>[^A-Z\n]*)(?P<type>[A-Z][A-Z0-9]{3})")
_AMOUNT = re.compile(r"^\d{1,12},\d{0,2}$")
_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<day>\d{6})(?P<currency>[A-Z]{3})(?P<amount>[^\s]*)$")
_BLZ_ACCOUNT = re.compile(r"^(?P<blz>\d{8})/(?P<account>\d{1,10})(?P<currency>[A-Z]{3})?$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_RETURN = re.compile(r"RTRN\+\s*([A-Z0-9]{4})")
_ISO_REASON = re.compile(r"^[A-Z]{2}\d{2}$|^[A-Z]{4}$")


def read(data: bytes, *, max_entries: int) -> Statement:
    text = _decode(data)
    problems = _check(text)
    if problems:
        raise StatementError(problems)
    try:
        blocks = [block for block in mt940_package.parse_statements(text, options=_OPTIONS)
                  if block.data.get("account_identification") or len(block)]
    except Exception as error:  # the package's own parse errors: say it in words and stop
        raise StatementError([f"the MT940 file cannot be read: {error}"]) from None
    if not blocks:
        raise StatementError(["the MT940 file holds no statement (no :20: and :25: tags)"])
    accounts = {block.data.get("account_identification", "").strip() for block in blocks}
    if len(accounts) > 1:
        raise StatementError([f"the file holds statements for {len(accounts)} accounts "
                              f"({', '.join(sorted(accounts))}); import one account's statements at a time"])
    account_text = accounts.pop()
    account, currency = _account(account_text)
    entries: list[Entry] = []
    for block in blocks:
        for transaction in block:
            if len(entries) >= max_entries:
                raise too_many(max_entries)
            entries.append(_entry(transaction.data, currency))
    first, last = blocks[0].data, blocks[-1].data
    opening = first.get("final_opening_balance") or first.get("intermediate_opening_balance")
    closing = last.get("final_closing_balance") or last.get("intermediate_closing_balance")
    number = first.get("statement_number")
    sequence = "/".join(part for part in (number, first.get("sequence_number")) if part) or None
    return Statement(
        format="mt940", version=None, statement_id=(first.get("transaction_reference") or "").strip(),
        sequence=sequence, account_iban=account,
        account_currency=currency or (str(opening.amount.currency) if opening else None),
        created_at=None, from_date=_date(opening.date) if opening else None,
        to_date=_date(closing.date) if closing else None,
        opening_balance=Decimal(opening.amount.amount) if opening else None,
        closing_balance=Decimal(closing.amount.amount) if closing else None,
        entries=finish(account or account_text, entries))


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # German banks' other usual encoding
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check(text: str) -> list[str]:
    """Problems with the lines the package reads too leniently: :61: amounts and dates, balances."""
    problems: list[str] = []
    has_account = False
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(":25:"):
            has_account = True
        elif line.startswith(":61:"):
            value = line[4:]
            match = _LINE_61.match(value)
            if not match:
                problems.append(f"line {number}: booking line {line[:40]!r} cannot be read (expected value date "
                                f"YYMMDD, booking date MMDD, C/D/RC/RD, amount like 120,50, type like NTRF)")
                continue
            amount = match["amount"].strip()
            if not _AMOUNT.match(amount):
                problems.append(f"line {number}: amount {amount!r} is not a number (MT940 writes 120,50)")
            _check_day(match["value"], number, problems)
            if match["booked"]:
                _check_day("00" + match["booked"], number, problems)
        elif line[:5] in (":60F:", ":60M:", ":62F:", ":62M:"):
            match = _BALANCE.match(line[5:].strip())
            if not match:
                problems.append(f"line {number}: balance {line!r} cannot be read (expected e.g. C261201EUR1000,00)")
                continue
            if not _AMOUNT.match(match["amount"]):
                problems.append(f"line {number}: balance amount {match['amount']!r} is not a number")
            try:
                minor_unit(match["currency"])
            except CurrencyError:
                problems.append(f"line {number}: currency {match['currency']!r} is not an ISO 4217 currency")
            _check_day(match["day"], number, problems)
    if not has_account and not problems:
        problems.append("the MT940 file names no account (:25: tag missing)")
    return problems


def _check_day(yymmdd: str, number: int, problems: list[str]) -> None:
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        problems.append(f"line {number}: {yymmdd!r} is not a date (MT940 writes YYMMDD)")


def _date(value) -> date:
    return date(value.year, value.month, value.day)


def _account(text: str) -> tuple[str | None, str | None]:
    """(IBAN, currency) of the :25: account: an IBAN as it is, a German BLZ/account number as its IBAN."""
    compact = text.replace(" ", "").upper()
    currency = None
    if len(compact) > 3 and compact[-3:].isalpha() and _IBAN.match(compact[:-3]):
        compact, currency = compact[:-3], compact[-3:]
    if _IBAN.match(compact):
        return compact, currency
    match = _BLZ_ACCOUNT.match(compact)
    if match:
        bban = match["blz"] + match["account"].zfill(10)
        check = 98 - int("".join(str(int(ch, 36)) for ch in bban + "DE00")) % 97
        return f"DE{check:02d}{bban}", match["currency"]
    return None, currency


def _entry(data: dict, account_currency: str | None) -> Entry:
    mark = data["status"].upper()
    amount = abs(Decimal(data["amount"].amount))
    currency = str(data["amount"].currency or account_currency or "").upper()
    value_date = _date(data["date"])
    booking_date = _date(data["entry_date"]) if data.get("entry_date") else value_date
    bank_reference = (data.get("bank_reference") or "").strip()
    if not bank_reference or bank_reference.upper() == "NONREF":
        bank_reference = None
    end_to_end = (data.get("end_to_end_reference") or "").strip() or None
    if end_to_end and end_to_end.upper() in ("NOTPROVIDED", "NONREF"):
        end_to_end = None
    if "transaction_details" in data:   # an unstructured :86:
        remittance = "".join((data["transaction_details"] or "").split("\n")).strip()
    else:
        remittance = ((data.get("purpose") or "") + (data.get("additional_purpose") or "")).strip()
    references = parse_creditor_references(remittance) or parse_creditor_references(end_to_end)
    iban = (data.get("applicant_iban") or "").replace(" ", "").upper()
    if not _IBAN.match(iban):
        iban = (data.get("gvc_applicant_iban") or "").replace(" ", "").upper()
    bic = (data.get("applicant_bin") or "").strip().upper()
    if not _BIC.match(bic):
        bic = (data.get("gvc_applicant_bin") or "").strip().upper()
    returned = (data.get("return_debit_notes") or "").strip().upper()
    found = _RETURN.search(remittance)
    if found and not _ISO_REASON.match(returned):
        returned = found.group(1)
    return Entry(
        fingerprint="", booking_date=booking_date, value_date=value_date, amount=amount, currency=currency,
        direction="credit" if mark in ("C", "RD") else "debit", reversal=mark.startswith("R"),
        bank_reference=bank_reference, end_to_end_id=end_to_end,
        creditor_reference=references[0] if references else None, remittance=remittance,
        counterparty_name=(data.get("applicant_name") or data.get("deviate_applicant") or "").strip() or None,
        counterparty_iban=iban if _IBAN.match(iban) else None, counterparty_bic=bic if _BIC.match(bic) else None,
        return_reason=returned or None, bank_transaction_code=(data.get("transaction_code") or "").strip() or None)
