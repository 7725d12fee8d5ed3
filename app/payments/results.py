"""The bank's answers for SEPA debits: one at a time (the batch page's buttons) or a result file.

A result file is a CSV (below) or the bank's own ISO 20022 answer, a pain.002 status report or a
camt.054 notification (read by `app/payments/bank_answers.py`); the format is found from the file or
given. Every format goes through the same checks and the same `apply_outcome`.

A result file is a CSV with the header `end_to_end_id,outcome,date,reason`: `outcome` is
`collected` or `returned`, `date` is ISO (`2026-12-01`), `reason` is required for a return (e.g.
`AM04 insufficient funds`). The import is all or nothing: every row is checked first and every
problem is reported as `line N: column: reason`; only a file without problems is applied, each
row through `record_outcome` (which records the payment, or schedules the retry / flags).
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO

from lxml import etree
from sqlalchemy import select

from app.transactions import transactional
from app.audit import Actor, record
from app.errors import NotReadable, OutcomeError, PaymentError, ResultImportFailed
from app.extensions import db
from app.formatting import format_money
from app.locale_input import date_form
from app.models import Invoice, LegalEntity, SepaBatch, SepaBatchItem
from app.payments import bank_answers
from app.payments.collection import record_outcome
from app.payments.sepa import item_by_end_to_end_id
from app.records import validation as v
from app.records.csv_stream import text_lines

COLUMNS = ("end_to_end_id", "outcome", "date", "reason")
OUTCOMES = ("collected", "returned")
EXAMPLE = ("end_to_end_id,outcome,date,reason\n"
           "DE01-2026-000001-1,collected,2026-12-01,\n"
           "DE01-2026-000002-1,returned,2026-12-01,AM04 insufficient funds\n")


@dataclass
class ImportSummary:
    collected: int = 0
    returned: int = 0
    accepted: int = 0  # received by the bank, not settled yet: nothing changes
    file_format: str = "csv"
    amount_collected: Decimal = Decimal(0)
    end_to_end_ids: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.collected + self.returned + self.accepted


# ------------------------------------------------------------------ one answer: the single place for the rules
def check_answer(outcome: str, date_text: str, reason: str,
                 locale: str | None = None) -> tuple[dict[str, str], date | None]:
    """What is wrong with the answer itself (column → message), and its date: YYYY-MM-DD, and with `locale` (a web
    form) also the locale's order (31.12.2026 for de_DE)."""
    errors: dict[str, str] = {}
    outcome = (outcome or "").strip().lower()
    if outcome not in OUTCOMES:
        errors["outcome"] = (f"{outcome!r} is not an outcome: use collected or returned" if outcome
                             else "outcome is required: collected or returned")
    on_date = None
    text = (date_text or "").strip()
    if not text:
        errors["date"] = f"date is required ({date_form(locale).placeholder if locale else 'YYYY-MM-DD'})"
    else:
        try:
            on_date = v.parse_date(text, locale)
        except v.FieldError as error:
            errors["date"] = str(error)
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
            locale = invoice.legal_entity.locale
            return (f"debit {item.end_to_end_id} ({format_money(item.amount, invoice.currency, locale)}) is more than "
                    f"the {format_money(invoice.amount_due, invoice.currency, locale)} still due on {invoice.number}")
    return None


def check_outcome(item: SepaBatchItem, outcome: str, date_text: str, reason: str,
                  locale: str | None = None) -> tuple[dict[str, str], date | None]:
    """Every problem with recording this answer for `item` (column → message), and the parsed date."""
    errors, on_date = check_answer(outcome, date_text, reason, locale)
    problem = check_debit(item, outcome)
    if problem:
        errors = {"end_to_end_id": problem, **errors}
    return errors, on_date


@transactional
def apply_outcome(item: SepaBatchItem, outcome: str, date_text: str, reason: str, actor: Actor,
                  locale: str | None = None) -> str:
    """Record the bank's answer for one debit (in the caller's transaction); returns the outcome. The date is
    read in `locale` when given (a web form), else as YYYY-MM-DD.

    Raises OutcomeError naming the column at fault; then nothing was changed.
    """
    errors, on_date = check_outcome(item, outcome, date_text, reason, locale)
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
        problems, item = _check_row(line, values["end_to_end_id"], values["outcome"], values["date"],
                                    values["reason"], seen)
        order = {c: i for i, c in enumerate(COLUMNS)}
        for column in sorted(problems, key=order.get):
            errors.append(f"line {line}: {column}: {problems[column]}")
        if not problems:
            rows.append(_Row(line, item, values["outcome"].lower(), values["date"], values["reason"]))
    if not rows and not errors:
        errors.append("line 2: end_to_end_id: the file has no rows below its header")
    return rows


def _check_row(line: int, end_to_end_id: str, outcome: str, date_text: str, reason: str,
               seen: dict[str, int], column: str = "end_to_end_id") -> tuple[dict[str, str], SepaBatchItem | None]:
    """The problems of one answer (column → message) and its debit: the checks every format shares."""
    problems: dict[str, str] = {}
    if outcome != "accepted":
        problems, _ = check_answer(outcome, date_text, reason)
    item = None
    bad_id = _bad_end_to_end_id(end_to_end_id)
    if bad_id:
        problems[column] = bad_id
    elif end_to_end_id in seen:
        problems[column] = f"{end_to_end_id} appears again (first on line {seen[end_to_end_id]})"
    else:
        seen[end_to_end_id] = line
        item = item_by_end_to_end_id(end_to_end_id)
        problem = (f"no debit with the end-to-end id {end_to_end_id}" if item is None
                   else None if outcome == "accepted" else check_debit(item, outcome))
        if problem:
            problems[column] = problem
    return problems, item


def _read_answers(data: bytes, file_format: str | None, errors: list[str],
                  max_rows: int | None) -> tuple[str, list[_Row]]:
    """The rows of a pain.002 or camt.054 (see bank_answers), checked like CSV rows plus what the file
    claims: the batch it answers (OrgnlMsgId), the creditor account, the amount."""
    try:
        found, answers = bank_answers.read(data, file_format)
    except bank_answers.NotAnAnswer as error:
        errors.extend(error.errors)
        return file_format or "xml", []
    answers = _expand_whole_batch(answers, errors)
    if max_rows is not None and len(answers) > max_rows:
        errors[:] = [f"the file answers more than {max_rows:,} debits, the most an import here takes; "
                     "ask the bank for smaller files"]
        return found, []
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for answer in answers:
        problems, item = _check_row(answer.line, answer.end_to_end_id, answer.outcome, answer.date_text,
                                    answer.reason, seen, answer.element)
        if item is not None:
            problems.update(_claims(answer, item))
        for column, message in problems.items():
            errors.append(f"line {answer.line}: {column}: {message}")
        if not problems:
            rows.append(_Row(answer.line, item, answer.outcome, answer.date_text, answer.reason))
    return found, rows


def _expand_whole_batch(answers: list[bank_answers.Answer], errors: list[str]) -> list[bank_answers.Answer]:
    """A status for the whole batch (no transactions in the report) becomes one answer per pending debit."""
    expanded = []
    for answer in answers:
        if not answer.whole_batch:
            expanded.append(answer)
            continue
        batch = db.session.scalar(select(SepaBatch).where(SepaBatch.message_id == answer.message_id,
                                                          SepaBatch.status == "closed"))
        if batch is None:
            errors.append(f"line {answer.line}: OrgnlMsgId: {answer.message_id or '(none)'} is not a SEPA batch "
                          "we sent: is the report for another creditor?")
            continue
        pending = [item for item in batch.items if item.status == "pending"]
        if answer.payment_info_id is not None:
            block = payment_block(batch, answer.payment_info_id)
            if block is None:
                errors.append(f"line {answer.line}: OrgnlPmtInfId: {answer.payment_info_id} is not a payment "
                              f"block of the message {answer.message_id}: is the report for another file?")
                continue
            pending = [item for item in pending if item.end_to_end_id in block]
        if not pending:
            errors.append(f"line {answer.line}: {answer.element}: every debit of the message {answer.message_id} "
                          "has its answer already; this report adds nothing")
        expanded.extend(bank_answers.Answer(**{**answer.__dict__, "end_to_end_id": item.end_to_end_id,
                                               "whole_batch": False}) for item in pending)
    return expanded


def payment_block(batch: SepaBatch, payment_info_id: str) -> set[str] | None:
    """The end-to-end ids of one payment-information block (PmtInfId) of the pain.008 we sent, or None."""
    root = etree.fromstring(batch.xml)
    for block in root.iter("{*}PmtInf"):
        if block.findtext("{*}PmtInfId") == payment_info_id:
            return {node.text for node in block.iter("{*}EndToEndId")}
    return None


def _claims(answer: bank_answers.Answer, item: SepaBatchItem) -> dict[str, str]:
    """What the file says about the debit that our records contradict (element → message)."""
    problems: dict[str, str] = {}
    if answer.message_id is not None and answer.message_id != item.batch.message_id:
        problems["OrgnlMsgId"] = (f"debit {item.end_to_end_id} was sent in the message {item.batch.message_id}, "
                                  f"not {answer.message_id}: is the report for another creditor?")
    entity = db.session.get(LegalEntity, item.batch.legal_entity_id)
    if answer.iban is not None and answer.iban.replace(" ", "").upper() != (entity.iban or "").replace(" ", "").upper():
        problems["IBAN"] = (f"the file is for the account {answer.iban}, not {entity.code}'s account "
                            f"{entity.iban or '(none)'}: it belongs to another creditor or account")
    if answer.creditor_id is not None and answer.creditor_id != entity.sepa_creditor_id:
        problems["CdtrSchmeId"] = (f"the debit was collected for the creditor {answer.creditor_id}, not "
                                   f"{entity.code}'s {entity.sepa_creditor_id or '(none)'}")
    if answer.amount is not None and answer.outcome == "collected":  # a return may carry the bank's fees
        invoice = db.session.get(Invoice, item.invoice_id)
        if answer.amount != item.amount or (answer.currency and answer.currency != invoice.currency):
            said = format_money(answer.amount, answer.currency or invoice.currency, entity.locale)
            problems["Amt"] = (f"the bank says {said}, our debit {item.end_to_end_id} is "
                               f"{format_money(item.amount, invoice.currency, entity.locale)}")
    return problems


def _bad_end_to_end_id(text: str) -> str | None:
    """Why `text` cannot be an end-to-end id, or None (SEPA: one line, at most 35 characters)."""
    try:
        v.parse_name(text, "end-to-end id", v.column_length(SepaBatchItem.end_to_end_id))
    except v.FieldError as error:
        return str(error)
    return None


@transactional
def import_results(stream: IO[bytes] | IO[str], actor: Actor, *, max_rows: int | None = None,
                   file_format: str | None = None) -> ImportSummary:
    """Apply a bank result file (bytes or text): all rows or none (see the module's docstring).

    `file_format` is csv, pain002 or camt054; None finds it from the file (an XML root namespace, else
    CSV). Runs in the caller's transaction, which commits; raises ResultImportFailed listing every bad
    line, and then nothing has changed. `max_rows` (the web app's cap) refuses a longer file.
    """
    if file_format is not None and file_format not in bank_answers.FORMATS:
        raise ResultImportFailed([f"format: {file_format!r} is not a result format: use "
                                  f"{', '.join(bank_answers.FORMATS)}"])
    errors: list[str] = []
    # The first non-blank line tells CSV from XML; a CSV is then read on line by line (memory flat
    # however long), an XML document whole (it is parsed as one tree).
    first: list[bytes] = []
    for line in iter(stream.readline, b"" if isinstance(stream.read(0), bytes) else ""):
        first.append(line.encode("utf-8") if isinstance(line, str) else line)
        if first[-1].strip(b"\xef\xbb\xbf \t\r\n"):
            break
    xml = b"".join(first).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"
    if file_format == "csv" or (file_format is None and not xml):
        found, rows = "csv", _read(itertools.chain(first, stream), errors, max_rows)
    else:
        rest = stream.read()
        data = b"".join(first) + (rest.encode("utf-8") if isinstance(rest, str) else rest)
        try:
            found = file_format or bank_answers.detect(data)
        except bank_answers.NotAnAnswer as error:
            raise ResultImportFailed(error.errors) from None
        found, rows = _read_answers(data, found, errors, max_rows)
    if errors:
        raise ResultImportFailed(errors)
    summary = ImportSummary(file_format=found)
    savepoint = db.session.begin_nested()
    for row in rows:
        try:
            if row.outcome != "accepted":
                apply_outcome(row.item, row.outcome, row.date_text, row.reason, actor)
        except OutcomeError as error:  # changed since it was checked (another user, a race)
            savepoint.rollback()
            raise ResultImportFailed([f"line {row.line}: {column}: {message}"
                                      for column, message in error.errors.items()]) from error
        if row.outcome == "accepted":
            summary.accepted += 1
            continue
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
           file_format=found, collected=summary.collected, returned=summary.returned, accepted=summary.accepted,
           amount_collected=str(summary.amount_collected), end_to_end_ids=summary.end_to_end_ids)
    return summary
