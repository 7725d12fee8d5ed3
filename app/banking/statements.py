"""A bank statement as plain values, whatever file it came in: `read_statement(data)` → `Statement`.

Reading only: no database, no Flask, no clock. The formats are ISO 20022 camt.053 (.001.02 and .001.08,
`app/banking/camt053.py`), SWIFT MT940 as German banks send it (`app/banking/mt940.py`) and a documented CSV
(`app/banking/csvfile.py`). Each reader returns entries without fingerprints; `finish()` gives them theirs.

Only booked entries are entries: a camt.053 entry with status PDNG (pending) or INFO has not moved money, so
it is skipped and counted in `Statement.skipped`. A batch booking (one camt.053 entry with several TxDtls)
becomes one `Entry` per transaction, each with its own amount: that is what is matched to invoices.

Fingerprints (dedupe across imports of the same or of overlapping statements)
---------------------------------------------------------------------------
- When the bank gives a reference for the entry (camt AcctSvcrRef of the transaction or of the entry, else
  NtryRef; MT940 bank reference unless NONREF), the fingerprint is `"{account}|{reference}"`, with `#n` for
  the n-th transaction of a batch entry that has no reference of its own. A bank's reference identifies the
  booking on that account for good, so a re-sent or overlapping statement gives the same fingerprint even
  when the bank has since corrected the remittance text. Longer than 64 characters → its sha256 (64 hex).
- Otherwise (CSV, NONREF, a bank that repeats its references within one statement) it is the first 32 hex of
  the sha256 of account, booking date, value date, direction, reversal, amount, currency, end-to-end id,
  remittance and counterparty IBAN, plus an occurrence counter for identical entries within the statement.
  Limits: the same booking read from two files that disagree on any of these (e.g. an intraday file and the
  day's statement with a longer remittance) gives two fingerprints; two truly identical payments on the same
  day are told apart only by their order within one file, so an overlapping file that holds just the second
  of them takes it for the first.
The account is the statement's IBAN (or the MT940 :25: account), empty for CSV: the caller keeps fingerprints
per bank account.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable

from app.errors import StatementError

FORMATS = ("camt053", "mt940", "csv")
MAX_BYTES = 20 * 1024 * 1024   # the default size guard; the app passes its STATEMENT_MAX_BYTES
MAX_ENTRIES = 200_000
# The largest amount bank_entries.amount and the balances hold (Numeric(18, 4)): a larger one was a database error
# on PostgreSQL. This module reads files without the database; tests/unit/test_statements.py checks it is the model's.
AMOUNT_MAX = Decimal("99999999999999.9999")


@dataclass(frozen=True)
class Entry:
    """One booking on the account: money in (`credit`) or out (`debit`), amount always positive."""
    fingerprint: str
    booking_date: date
    value_date: date | None
    amount: Decimal
    currency: str
    direction: str                      # "credit" | "debit"
    reversal: bool = False              # the bank reverses an earlier booking (camt RvslInd, MT940 RC/RD)
    bank_reference: str | None = None
    end_to_end_id: str | None = None
    creditor_reference: str | None = None   # structured reference, e.g. an ISO 11649 RF... reference
    remittance: str = ""
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    return_reason: str | None = None        # ISO reason code of a returned debit (AM04, MD06, ...)
    bank_transaction_code: str | None = None


@dataclass(frozen=True)
class Statement:
    format: str                         # "camt053" | "mt940" | "csv"
    version: str | None
    statement_id: str
    sequence: str | None
    account_iban: str | None
    account_currency: str | None
    created_at: datetime | None
    from_date: date | None
    to_date: date | None
    opening_balance: Decimal | None     # signed: negative = overdrawn
    closing_balance: Decimal | None
    entries: tuple[Entry, ...]
    skipped: int = 0                    # entries not booked (pending, information only): not read
    notes: tuple[str, ...] = ()         # how a CSV was read: "the file uses ';' — read as such"


def detect(data: bytes) -> str:
    """`camt053`, `mt940` or `csv` from the content (XML is camt053: its reader says when it is another XML)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if head.startswith(b"<"):
        return "camt053"
    if head.startswith((b":20:", b"{1:", b":940:")) or b"\n:20:" in head or b"\r\n:20:" in head:
        return "mt940"
    return "csv"


def read_statement(data: bytes, file_format: str | None = None, *, max_bytes: int = MAX_BYTES,
                   max_entries: int = MAX_ENTRIES, locale: str | None = None) -> Statement:
    """The statement in `data`; `file_format` (camt053, mt940, csv) or detected from the content. `locale`
    (the legal entity's) gives a CSV's decimal separator unless the file shows another.
    Raises StatementError naming every problem; nothing partial is returned."""
    if len(data) > max_bytes:
        raise StatementError([f"the file is {len(data) / 1024 / 1024:.1f} MB; statements up to "
                              f"{max_bytes / 1024 / 1024:.0f} MB are read (split it by date)"])
    if not data.strip():
        raise StatementError(["the file is empty"])
    if file_format is not None and file_format not in FORMATS:
        raise StatementError([f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}"])
    found = file_format or detect(data)
    if found == "camt053":
        from app.banking.camt053 import read
        statement = read(data, max_entries=max_entries)
    elif found == "mt940":
        from app.banking.mt940 import read
        statement = read(data, max_entries=max_entries)
    else:
        from app.banking.csvfile import read
        statement = read(data, max_entries=max_entries, locale=locale)
    if len(statement.entries) > max_entries:
        raise StatementError([f"the file has {len(statement.entries):,} entries; up to {max_entries:,} are "
                              f"read at once (split it by date)"])
    too_large = [f"the entry of {entry.booking_date} for {entry.amount} {entry.currency} is larger than Arbill "
                 f"holds ({AMOUNT_MAX})" for entry in statement.entries if entry.amount > AMOUNT_MAX]
    too_large += [f"the {which} balance {balance} is larger than Arbill holds ({AMOUNT_MAX})"
                  for which, balance in (("opening", statement.opening_balance), ("closing", statement.closing_balance))
                  if balance is not None and abs(balance) > AMOUNT_MAX]
    if too_large:
        raise StatementError(too_large)
    return statement


def too_many(max_entries: int) -> StatementError:
    return StatementError([f"the file has more than {max_entries:,} entries; up to {max_entries:,} are read "
                           f"at once (split it by date)"])


# ------------------------------------------------------------------ fingerprints
def finish(account: str | None, entries: Iterable[Entry], batch_index: Iterable[int | None] | None = None
           ) -> tuple[Entry, ...]:
    """The entries with their fingerprints (see the module docstring). `batch_index` gives, per entry, its
    position within a batch booking whose transactions share the entry's bank reference (else None)."""
    entries = list(entries)
    indexes = list(batch_index) if batch_index is not None else [None] * len(entries)
    account = account or ""
    keys: list[str | None] = []
    for entry, index in zip(entries, indexes):
        if entry.bank_reference:
            key = f"{account}|{entry.bank_reference}" + (f"#{index}" if index else "")
            keys.append(key if len(key) <= 64 else hashlib.sha256(key.encode()).hexdigest())
        else:
            keys.append(None)
    repeated = {key for key, count in Counter(k for k in keys if k).items() if count > 1}
    seen: Counter = Counter()
    result = []
    for entry, key in zip(entries, keys):
        if key is None or key in repeated:
            base = "|".join((account, entry.booking_date.isoformat(),
                             entry.value_date.isoformat() if entry.value_date else "", entry.direction,
                             "R" if entry.reversal else "", format(entry.amount.normalize(), "f"), entry.currency,
                             entry.end_to_end_id or "", entry.remittance, entry.counterparty_iban or ""))
            seen[base] += 1
            key = hashlib.sha256(f"{base}|{seen[base]}".encode()).hexdigest()[:32]
        result.append(replace(entry, fingerprint=key))
    return tuple(result)
