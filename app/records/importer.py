"""The contracts CSV importer: all or nothing, every bad row named, memory flat however long the file.

One row is one contract line; rows sharing `entity` + `contract_ref` form one contract. A customer
is found by name within the entity, or created.

The file is read row by row from its stream (an upload's or a file's, never read whole): each row
is checked as it comes, and rows are written in batches of BATCH_ROWS inside a savepoint of the
caller's transaction. What stays in memory is what later rows are checked against: per contract
and per customer the values every one of their rows must repeat, not the rows. If any row is
invalid the savepoint is rolled back, nothing is written, and `ImportFailed.errors` lists the
problems as "line N: column: reason" in line order (the first MAX_MESSAGES, then "… and K more").
"""
from __future__ import annotations

import csv
import heapq
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, Iterable

from sqlalchemy import insert, select

from app import bulk
from app.transactions import transactional
from app.audit import Actor, record
from app.billing.vat import CATEGORIES
from app.errors import ImportFailed, NotReadable, NumberError
from app.extensions import db
from app.models import Contract, ContractLine, Customer, LegalEntity
from app.models.types import utcnow
from app.records import validation as v
from app.records.csv_stream import Problems
from app.records.import_rows import (COLUMNS, CONTRACT_COLUMNS, CUSTOMER_COLUMNS, CUSTOMER_PARTY_COLUMNS,
                                     OPTIONAL_COLUMNS, check_row)
from app.records.taxcodes import TaxCodes, buyer_problem
from app.spreadsheets import SheetReader, header_problem

BATCH_ROWS = 1000  # rows checked against the database and written together
CLI_HINT = "flask contracts import FILE"
NUMBER_COLUMNS = ("quantity", "unit_price", "tax_rate")


@dataclass
class ImportResult:
    contracts: int
    lines: int
    customers: int
    notes: list[str] = field(default_factory=list)  # how the file was read: "the file uses ';' — read as such"


class _Missing:
    """A column whose value was invalid on a row: it is not compared with other rows."""

    def __repr__(self) -> str:
        return "(invalid)"


MISSING = _Missing()


class _Contract:
    """What the rows of one contract are checked against, and where its lines go."""

    __slots__ = ("entity", "reference", "first_line", "values", "id", "positions")

    def __init__(self, entity: LegalEntity, reference: str, first_line: int, values: tuple):
        self.entity, self.reference, self.first_line, self.values = entity, reference, first_line, values
        self.id: int | None = None
        self.positions = 0


class _Customer:
    """A customer named by the file: an existing one (its payment method) or a new one (its first row's details)."""

    __slots__ = ("first_line", "details", "id", "existing_method", "existing_party")

    def __init__(self, first_line: int, details: tuple | None, id: int | None = None,
                 existing_method: str | None = None, existing_party: tuple = ()):
        self.first_line, self.details, self.id, self.existing_method = first_line, details, id, existing_method
        self.existing_party = existing_party


class _Row:
    """One row waiting for its batch: its line, entity and clean values (some missing if they were invalid)."""

    __slots__ = ("line", "entity", "clean", "method_given")

    def __init__(self, line: int, entity: LegalEntity, clean: dict, method_given: bool):
        self.line, self.entity, self.clean, self.method_given = line, entity, clean, method_given


@transactional
def import_contracts(stream: IO[bytes] | IO[str] | Iterable[str], actor: Actor | None = None, *,
                     max_rows: int | None = None) -> ImportResult:
    """Import the CSV `stream` (bytes or text) in the caller's transaction, or nothing.

    Raises ImportFailed listing the problems; then nothing was written. `max_rows` (the web app's
    cap) refuses a longer file without reading past the cap.
    """
    run = _Import(max_rows, actor)
    savepoint = bulk.savepoint()
    try:
        run.read(stream)
    except BaseException:
        savepoint.rollback()
        raise
    if run.problems:
        savepoint.rollback()
        raise ImportFailed(run.problems.messages(), run.problems.count)
    savepoint.commit()
    for entity_id, count in run.contracts_per_entity().items():
        record(
            "contracts.imported", "legal_entity", entity_id, actor or Actor.system("cli"),
            legal_entity_id=entity_id, contracts=count,
            references=heapq.nsmallest(50, (ref for eid, ref in run.contracts if eid == entity_id)),
        )
    return ImportResult(contracts=len(run.contracts), lines=run.lines_written, customers=run.customers_created,
                        notes=run.sheet.found.notes() if run.sheet else [])


def import_contracts_text(text: str, actor: Actor | None = None) -> ImportResult:
    return import_contracts(io.StringIO(text, newline=""), actor)


class _Import:
    """One import's state: the problems, the contracts and customers seen, the rows of the batch."""

    def __init__(self, max_rows: int | None, actor: Actor | None = None):
        self.max_rows, self.actor = max_rows, actor or Actor.system("cli")
        self.problems = Problems()
        self.entities = {e.code: e for e in db.session.scalars(select(LegalEntity))}
        self.contracts: dict[tuple[int, str], _Contract] = {}
        self.customers: dict[tuple[int, str], _Customer] = {}
        self.batch: list[_Row] = []
        self.tax_codes: dict[int, TaxCodes] = {}  # per entity: its codes, and those a bare rate made
        self.lines_written = self.customers_created = 0
        self.sheet: SheetReader | None = None

    def _tax_codes(self, entity: LegalEntity) -> TaxCodes:
        codes = self.tax_codes.get(entity.id)
        if codes is None:
            codes = self.tax_codes[entity.id] = TaxCodes(entity, self.actor)
        return codes

    def contracts_per_entity(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for entity_id, _reference in self.contracts:
            counts[entity_id] = counts.get(entity_id, 0) + 1
        return counts

    # -------------------------------------------------------------- reading
    def read(self, stream) -> None:
        rows = 0
        try:
            self.sheet = sheet = SheetReader(stream, expected=COLUMNS + OPTIONAL_COLUMNS)
            header = sheet.header
            problem = header_problem(header, COLUMNS)
            if problem:
                self.problems.add(1, problem)
                return
            columns = COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in header)
            index = [header.index(c) for c in columns]
            for line, cells in sheet:
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line
                rows += 1
                if self.max_rows is not None and rows > self.max_rows:
                    self.problems = Problems()  # the cap is the one thing to say: the rest was not read
                    self.problems.add(line, (
                        f"the file has more than {self.max_rows:,} rows, the most an import here takes; "
                        f"import it on the command line instead: {CLI_HINT}"))
                    return
                raw = dict.fromkeys(OPTIONAL_COLUMNS, "")
                raw.update({c: (cells[i] if i < len(cells) else "").strip() for c, i in zip(columns, index)})
                self.take(line, raw)
        except NotReadable as error:
            self.problems.add(error.line, error.message)
            return
        except csv.Error as error:
            line = self.sheet.line_num if self.sheet else 1
            self.problems.add(line, f"line {line}: not a readable CSV row ({error}); nothing after it was read")
            return
        self.flush()
        if not rows and not self.problems:
            self.problems.add(2, "the file has a header but no rows")

    def numbers(self, line: int, raw: dict[str, str]) -> dict[str, str]:
        """The number cells as dot-decimal text, read by the file's decimal separator (the locale of the first
        row's legal entity until a number settles it); {column: reason} for those that are not numbers."""
        decimals = self.sheet.decimals
        if decimals.locale is None:
            entity = self.entities.get(raw["entity"].upper())
            if entity is not None:
                decimals.use_locale(entity.locale)
        errors = {}
        for column in NUMBER_COLUMNS:
            if raw.get(column):
                try:
                    raw[column] = decimals.read(raw[column], line, column)
                except NumberError as error:
                    errors[column] = str(error)
        return errors

    def take(self, line: int, raw: dict[str, str]) -> None:
        """Check one row on its own; queue it for the checks against other rows and the database."""
        number_errors = self.numbers(line, raw)
        entity, clean, errors = check_row(raw, self.entities)
        errors.update(number_errors)
        if entity is not None and not ({"tax_code", "tax_rate"} & errors.keys()):
            column = "tax_code" if raw.get("tax_code") else "tax_rate"
            try:
                code = self._tax_codes(entity).line_code(raw.get("tax_code"), clean.get("tax_rate"))
                clean["tax_code_id"], clean["tax_rate"], clean["tax_code_obj"] = code.id, code.rate, code
            except v.FieldError as error:
                errors[column] = str(error)
        for column, message in errors.items():
            self.problems.add(line, f"line {line}: {column}: {message}")
        if entity is not None and "contract_ref" in clean:
            self.batch.append(_Row(line, entity, clean, bool(raw["payment_method"])))
            if len(self.batch) >= BATCH_ROWS:
                self.flush()

    # -------------------------------------------------------------- a batch: across rows, then written
    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        new_refs = {(r.entity.id, r.clean["contract_ref"]) for r in batch} - self.contracts.keys()
        existing_refs = _existing_refs(new_refs)
        new_names = {(r.entity.id, r.clean["customer"]) for r in batch if "customer" in r.clean} - self.customers.keys()
        existing_customers = _existing_customers(new_names)
        new_contracts: list[_Contract] = []
        new_customers: list[tuple[tuple[int, str], _Customer, dict]] = []
        for row in batch:
            self._check_contract(row, existing_refs, new_contracts)
            if "customer" in row.clean:
                self._check_customer(row, existing_customers, new_customers)
                self._check_buyer_vat_id(row)
        if not self.problems:
            self._write(batch, new_contracts, new_customers)

    def _check_contract(self, row: _Row, existing_refs: set, new_contracts: list[_Contract]) -> None:
        key = (row.entity.id, row.clean["contract_ref"])
        values = tuple(row.clean.get(c, MISSING) for c in CONTRACT_COLUMNS)
        contract = self.contracts.get(key)
        if contract is None:
            self.contracts[key] = contract = _Contract(row.entity, key[1], row.line, values)
            new_contracts.append(contract)
            if key in existing_refs:
                self.problems.add(row.line, f"line {row.line}: contract_ref: contract {key[1]} already exists "
                                            f"in {row.entity.code}")
            return
        for column, mine, first in zip(CONTRACT_COLUMNS, values, contract.values):
            if mine is not MISSING and first is not MISSING and mine != first:
                self.problems.add(row.line, (
                    f"line {row.line}: {column}: {_show(mine)} differs from contract {contract.reference}'s "
                    f"{_show(first)} (line {contract.first_line}); every line of a contract repeats the "
                    f"contract's {column}"))

    def _check_customer(self, row: _Row, existing: dict[tuple[int, str], tuple[int, str]],
                        new_customers: list) -> None:
        clean = row.clean
        key = (row.entity.id, clean["customer"])
        customer = self.customers.get(key)
        if customer is None:
            found = existing.get(key)
            if found is not None:
                customer = _Customer(row.line, None, *found)
            else:
                customer = _Customer(row.line, tuple(clean.get(c, MISSING) for c in CUSTOMER_COLUMNS))
                new_customers.append((key, customer, clean))
            self.customers[key] = customer
            if customer.details is not None:
                return
        if customer.details is None:  # an existing customer: the file cannot change how it pays or its party
            method = clean.get("payment_method")
            if method is not None and method != customer.existing_method and (row.method_given or method != "manual"):
                self.problems.add(row.line, (
                    f"line {row.line}: payment_method: customer {key[1]} already exists with payment method "
                    f"{customer.existing_method}; change it on the customer's page, not by import"))
            for column, stored in zip(CUSTOMER_PARTY_COLUMNS, customer.existing_party):
                mine = clean.get(column)
                if mine not in (None, MISSING) and mine != stored:
                    self.problems.add(row.line, (
                        f"line {row.line}: {column}: customer {key[1]} already exists with {_show(stored)}; "
                        "change it on the customer's page, not by import"))
            return
        for column, first in zip(CUSTOMER_COLUMNS, customer.details):
            mine = clean.get(column, MISSING)
            if mine is not MISSING and first is not MISSING and mine != first:
                self.problems.add(row.line, (
                    f"line {row.line}: {column}: {_show(mine)} differs from {_show(first)} given for customer "
                    f"{key[1]} on line {customer.first_line}"))

    def _check_buyer_vat_id(self, row: _Row) -> None:
        """A line whose tax code needs the buyer's VAT ID (reverse charge, intra-community supply) needs a
        customer with one: given in the file for a new customer, on record for an existing one."""
        code = row.clean.get("tax_code_obj")
        customer = self.customers[(row.entity.id, row.clean["customer"])]
        if code is None or not CATEGORIES[code.category].needs_buyer_vat_id:
            return
        if customer.details is not None:
            vat_id = customer.details[CUSTOMER_COLUMNS.index("customer_vat_id")]
        else:
            vat_id = customer.existing_party[CUSTOMER_PARTY_COLUMNS.index("customer_vat_id")]
        if vat_id is MISSING:
            return  # the VAT ID given was invalid: that is reported already
        problem = buyer_problem(code, vat_id, "give it in customer_vat_id" if customer.details is not None
                                else "add it on the customer's page")
        if problem:
            self.problems.add(row.line, f"line {row.line}: tax_code: {problem}")

    def _write(self, batch: list[_Row], new_contracts: list[_Contract],
               new_customers: list[tuple[tuple[int, str], _Customer, dict]]) -> None:
        """Insert the batch's new customers and contracts, then its lines (set-based, in the savepoint)."""
        now = utcnow()
        if new_customers:
            ids = _insert(Customer.__table__, CUSTOMER_TABLE_COLUMNS, [
                (key[0], key[1], clean.get("customer_email"), clean["payment_method"], clean.get("iban"),
                 clean.get("mandate_reference"), clean.get("mandate_date"),
                 *(clean.get(c) for c in CUSTOMER_PARTY_COLUMNS), now)
                for key, _customer, clean in new_customers])
            for (_key, customer, _clean), new_id in zip(new_customers, ids):
                customer.id = new_id
            self.customers_created += len(ids)
        if new_contracts:
            ids = _insert(Contract.__table__, CONTRACT_TABLE_COLUMNS, [
                (c.entity.id, self.customers[(c.entity.id, c.values[0])].id, c.reference, "active", *c.values[1:], now)
                for c in new_contracts])
            for contract, new_id in zip(new_contracts, ids):
                contract.id = new_id
        lines = []
        for row in batch:
            contract = self.contracts[(row.entity.id, row.clean["contract_ref"])]
            contract.positions += 1
            clean = row.clean
            lines.append((contract.id, contract.positions, clean["description"], clean["quantity"],
                          clean["unit_price"], clean["tax_rate"], clean["tax_code_id"]))
        bulk.copy_rows(ContractLine.__table__, LINE_TABLE_COLUMNS, lines)
        self.lines_written += len(lines)


# The columns the importer writes, in the order of the tuples `_write` makes.
CUSTOMER_TABLE_COLUMNS = ("legal_entity_id", "name", "email", "payment_method", "iban", "mandate_reference",
                          "mandate_date", "address_line1", "address_line2", "postcode", "city", "country", "vat_id",
                          "buyer_reference", "created_at")  # address_line1 … buyer_reference: CUSTOMER_PARTY_COLUMNS
CONTRACT_TABLE_COLUMNS = ("legal_entity_id", "customer_id", "reference", "status", "currency", "frequency",
                          "start_date", "end_date", "po_reference", "created_at")  # currency … po_reference: CONTRACT_COLUMNS[1:]
LINE_TABLE_COLUMNS = ("contract_id", "position", "description", "quantity", "unit_price", "vat_rate", "tax_code_id")


def _insert(table, columns: tuple[str, ...], rows: list[tuple]) -> list[int]:
    """Insert `rows` (tuples in `columns` order); their new ids, in order. PostgreSQL: ids from the
    sequence, rows by COPY (app.bulk); SQLite: one INSERT … RETURNING, the database numbering them."""
    ids = bulk.reserve_ids(table, len(rows))
    if ids is None:
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(db.session.execute(statement, [dict(zip(columns, row)) for row in rows]).scalars())
    bulk.copy_rows(table, ("id", *columns), [(new_id, *row) for new_id, row in zip(ids, rows)])
    return ids


# Lookups by (entity, reference) and (entity, name) probe the unique indexes once per key (app.bulk):
# the tables grow in this transaction, and without statistics an IN list was planned as a sequential
# scan per batch, which made a long import quadratic.
def _existing_refs(keys: set[tuple[int, str]]) -> set[tuple[int, str]]:
    rows = bulk.for_each_key(select(Contract.id), (Contract.legal_entity_id.label("entity_id"),
                                                   Contract.reference.label("reference")), sorted(keys))
    return {(row.entity_id, row.reference) for row in rows}


def _existing_customers(keys: set[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, str]]:
    """(entity id, name) → (id, payment method, party values as CUSTOMER_PARTY_COLUMNS) of the customers that exist."""
    party = [getattr(Customer, c) for c in CUSTOMER_TABLE_COLUMNS[7:14]]
    rows = bulk.for_each_key(select(Customer.id, Customer.payment_method, *party),
                             (Customer.legal_entity_id.label("entity_id"), Customer.name.label("name")), sorted(keys))
    return {(row.entity_id, row.name): (row.id, row.payment_method, tuple(getattr(row, c.key) for c in party))
            for row in rows}


def _show(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, (date, Decimal)):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)
