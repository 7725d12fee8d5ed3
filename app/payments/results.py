"""The bank's answers for SEPA debits: one at a time (the batch page's buttons) or a result file.

A result file is a CSV with the header `end_to_end_id,outcome,date,reason`: `outcome` is
`collected` or `returned`, `date` is ISO (`2026-12-01`), `reason` is required for a return (e.g.
`AM04 insufficient funds`). The import is all or nothing: every row is checked first and every
problem is reported as `line N: column: reason`; only a file without problems is applied, each
row through `record_outcome` (which records the payment, or schedules the retry / flags).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO

from app.audit import Actor, record
from app.billing.money import round_money
from app.extensions import db
from app.models import Invoice, SepaBatchItem
from app.payments.collection import record_outcome
from app.payments.ledger import PaymentError
from app.payments.sepa import item_by_end_to_end_id
from app.records import validation as v
from app.records.importer import NotReadable, text_lines

COLUMNS = ("end_to_end_id", "outcome", "date", "reason")
OUTCOMES = ("collected", "returned")
EXAMPLE = ("end_to_end_id,outcome,date,reason\n"
           "DE01-2026-000001-1,collected,2026-12-01,\n"
           "DE01-2026-000002-1,returned,2026-12-01,AM04 insufficient funds\n")


class OutcomeError(ValueError):
    """The bank's answer for one debit cannot be recorded; `errors` maps a column to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{column}: {message}" for column, message in errors.items()))


class ResultImportFailed(ValueError):
    """A result file with problems: nothing was recorded; `errors` lists `line N: column: reason`."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s); nothing was recorded")


@dataclass
class ImportSummary:
    collected: int = 0
    returned: int = 0
    amount_collected: Decimal = Decimal(0)
    end_to_end_ids: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.collected + self.returned


# ------------------------------------------------------------------ one answer: the single place for the rules
def check_answer(outcome: str, date_text: str, reason: str) -> tuple[dict[str, str], date | None]:
    """What is wrong with the answer itself (column → message), and its date."""
    errors: dict[str, str] = {}
    outcome = (outcome or "").strip().lower()
    if outcome not in OUTCOMES:
        errors["outcome"] = (f"{outcome!r} is not an outcome: use collected or returned" if outcome
                             else "outcome is required: collected or returned")
    on_date = None
    text = (date_text or "").strip()
    if not text:
        errors["date"] = "date is required (YYYY-MM-DD)"
    else:
        try:
            on_date = v.check_date_range(date.fromisoformat(text))
        except v.FieldError as error:
            errors["date"] = str(error)
        except ValueError:
            errors["date"] = f"{text!r} is not an ISO date (YYYY-MM-DD)"
    if outcome == "returned" and not (reason or "").strip():
        errors["reason"] = "say why the debit was returned (e.g. MD06, AC04, AM04 insufficient funds)"
    else:
        try:
            v.parse_optional_text(reason, "the reason", v.ONE_LINE_TEXT_MAX)
        except v.FieldError as error:
            errors["reason"] = str(error)
    return errors, on_date


def check_debit(item: SepaBatchItem, outcome: str) -> str | None:
    """Why the debit cannot take an answer now, or None: what `record_outcome` and `record_payment` refuse."""
    if item.status != "pending":
        return f"debit {item.end_to_end_id} is already {item.status}"
    if item.batch.status != "closed":
        return f"debit {item.end_to_end_id} has not been sent yet: close batch #{item.batch_id} first"
    if (outcome or "").strip().lower() == "collected":
        invoice = db.session.get(Invoice, item.invoice_id)
        if invoice.status != "issued":
            return f"invoice {invoice.number} is {invoice.status}: only issued invoices take payments"
        if item.amount > invoice.amount_due:
            return (f"debit {item.end_to_end_id} ({round_money(item.amount, invoice.currency)} {invoice.currency}) "
                    f"is more than the {round_money(invoice.amount_due, invoice.currency)} still due on "
                    f"{invoice.number}")
    return None


def check_outcome(item: SepaBatchItem, outcome: str, date_text: str, reason: str) -> tuple[dict[str, str], date | None]:
    """Every problem with recording this answer for `item` (column → message), and the parsed date."""
    errors, on_date = check_answer(outcome, date_text, reason)
    problem = check_debit(item, outcome)
    if problem:
        errors = {"end_to_end_id": problem, **errors}
    return errors, on_date


def apply_outcome(item: SepaBatchItem, outcome: str, date_text: str, reason: str, actor: Actor) -> str:
    """Record the bank's answer for one debit (in the caller's transaction); returns the outcome.

    Raises OutcomeError naming the column at fault; then nothing was changed.
    """
    errors, on_date = check_outcome(item, outcome, date_text, reason)
    if errors:
        raise OutcomeError(errors)
    outcome = outcome.strip().lower()
    savepoint = db.session.begin_nested()
    try:
        record_outcome(item, outcome, on_date, actor, (reason or "").strip())
    except (ValueError, PaymentError) as error:
        savepoint.rollback()
        raise OutcomeError({"end_to_end_id": str(error)}) from error
    savepoint.commit()
    return outcome


# ------------------------------------------------------------------ a result file
@dataclass
class _Row:
    line: int
    item: SepaBatchItem
    outcome: str
    date_text: str
    reason: str


def _read(stream: IO[bytes] | IO[str], errors: list[str], max_rows: int | None = None) -> list[_Row]:
    """Every good row; append `line N: column: reason` for every problem of every other row."""
    reader = csv.DictReader(text_lines(stream))
    try:
        return _read_rows(reader, errors, max_rows)
    except NotReadable as error:
        errors.append(error.message)
    except csv.Error as error:
        errors.append(f"line {reader.line_num}: not a readable CSV row ({error}); nothing after it was read")
    return []


def _read_rows(reader: csv.DictReader, errors: list[str], max_rows: int | None) -> list[_Row]:
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        errors.append(f"line 1: header: missing column(s) {', '.join(missing)} "
                      f"(the header is {','.join(COLUMNS)})")
        return []
    reader.fieldnames = header
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    count = 0
    ended = reader.line_num
    for raw in reader:
        line, ended = ended + 1, reader.line_num  # a row starts on the line after the last one ended
        values = {c: (raw.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        count += 1
        if max_rows is not None and count > max_rows:
            errors[:] = [f"the file has more than {max_rows:,} rows, the most an import here takes; "
                         "split it into smaller files"]
            return []
        end_to_end_id = values["end_to_end_id"]
        problems, _ = check_answer(values["outcome"], values["date"], values["reason"])
        item = None
        bad_id = _bad_end_to_end_id(end_to_end_id)
        if bad_id:
            problems["end_to_end_id"] = bad_id
        elif end_to_end_id in seen:
            problems["end_to_end_id"] = f"{end_to_end_id} appears again (first on line {seen[end_to_end_id]})"
        else:
            seen[end_to_end_id] = line
            item = item_by_end_to_end_id(end_to_end_id)
            problem = (f"no debit with the end-to-end id {end_to_end_id}" if item is None
                       else check_debit(item, values["outcome"]))
            if problem:
                problems["end_to_end_id"] = problem
        order = {c: i for i, c in enumerate(COLUMNS)}
        for column in sorted(problems, key=order.get):
            errors.append(f"line {line}: {column}: {problems[column]}")
        if not problems:
            rows.append(_Row(line, item, values["outcome"].lower(), values["date"], values["reason"]))
    if not rows and not errors:
        errors.append("line 2: end_to_end_id: the file has no rows below its header")
    return rows


def _bad_end_to_end_id(text: str) -> str | None:
    """Why `text` cannot be an end-to-end id, or None (SEPA: one line, at most 35 characters)."""
    try:
        v.parse_name(text, "end-to-end id", v.column_length(SepaBatchItem.end_to_end_id))
    except v.FieldError as error:
        return str(error)
    return None


def import_results(stream: IO[bytes] | IO[str], actor: Actor, *, max_rows: int | None = None) -> ImportSummary:
    """Apply a bank result file (bytes or text): all rows or none (see the module's docstring).

    Runs in the caller's transaction, which commits; raises ResultImportFailed listing every bad
    line, and then nothing has changed. `max_rows` (the web app's cap) refuses a longer file.
    """
    errors: list[str] = []
    rows = _read(stream, errors, max_rows)
    if errors:
        raise ResultImportFailed(errors)
    summary = ImportSummary()
    savepoint = db.session.begin_nested()
    for row in rows:
        try:
            apply_outcome(row.item, row.outcome, row.date_text, row.reason, actor)
        except OutcomeError as error:  # changed since it was checked (another user, a race)
            savepoint.rollback()
            raise ResultImportFailed([f"line {row.line}: {column}: {message}"
                                      for column, message in error.errors.items()]) from error
        if row.outcome == "collected":
            summary.collected += 1
            summary.amount_collected += row.item.amount
        else:
            summary.returned += 1
        summary.end_to_end_ids.append(row.item.end_to_end_id)
    savepoint.commit()
    batches = sorted({row.item.batch_id for row in rows})
    entities = {row.item.batch.legal_entity_id for row in rows}
    record("sepa_results.imported", "sepa_batch", batches[0] if len(batches) == 1 else None, actor,
           legal_entity_id=entities.pop() if len(entities) == 1 else None, batches=batches,
           collected=summary.collected, returned=summary.returned,
           amount_collected=str(summary.amount_collected), end_to_end_ids=summary.end_to_end_ids)
    return summary
