"""The contracts CSV importer: all or nothing, every bad row named.

One row is one contract line; rows sharing `entity` + `contract_ref` form one contract. A customer
is found by name within the entity, or created. If any row is invalid nothing is written and
`ImportFailed.errors` lists every problem as "line N: column: reason".
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Iterable, TextIO

from sqlalchemy import select

from app.audit import Actor, record
from app.extensions import db
from app.models import Contract, ContractLine, Customer, LegalEntity
from app.records import validation as v

COLUMNS = (
    "entity", "contract_ref", "customer", "customer_email", "description", "quantity", "unit_price",
    "currency", "tax_rate", "frequency", "start_date", "end_date", "payment_method", "iban",
    "mandate_reference", "mandate_date",
)
# Columns that describe the contract (or its customer) and must agree on every row of one contract.
CONTRACT_COLUMNS = ("customer", "currency", "frequency", "start_date", "end_date")
CUSTOMER_COLUMNS = ("customer_email", "payment_method", "iban", "mandate_reference", "mandate_date")


class ImportFailed(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s); nothing was imported")


@dataclass
class ImportResult:
    contracts: int
    lines: int
    customers: int


@dataclass
class _Row:
    line: int
    values: dict
    entity: LegalEntity | None = None


@dataclass
class _ContractDraft:
    entity: LegalEntity
    reference: str
    first: _Row
    rows: list[_Row] = field(default_factory=list)


def parse_csv(stream: TextIO) -> tuple[list[_Row], list[str]]:
    """Read the file; return rows (with raw text values) and header problems."""
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [f"line 1: header: missing column(s) {', '.join(missing)}"]
    reader.fieldnames = header
    rows = []
    for raw in reader:
        if not any((value or "").strip() for key, value in raw.items() if key is not None):
            continue  # blank line
        rows.append(_Row(line=reader.line_num, values={c: (raw.get(c) or "").strip() for c in COLUMNS}))
    return rows, []


def _validate_row(row: _Row, entities: dict[str, LegalEntity], errors: list[str]) -> dict:
    """Parse one row's values; append 'line N: column: reason' for each bad one."""
    raw = row.values
    fields = v.Fields(raw)
    clean, take = fields.clean, fields.take

    code = raw["entity"].upper()
    if not code:
        fields.errors["entity"] = "value is required"
    elif code not in entities:
        fields.errors["entity"] = f"unknown legal entity {code!r} (add it with `flask entities add`)"
    else:
        row.entity = entities[code]
    take("contract_ref", lambda s: v.required(s, "contract reference"))
    take("customer", lambda s: v.required(s, "customer name"))
    take("customer_email", v.parse_email)
    take("description", lambda s: v.required(s, "description"))
    take("quantity", v.parse_quantity)
    take("unit_price", v.parse_price)
    take("currency", v.parse_currency)
    take("tax_rate", v.parse_rate)
    take("frequency", v.parse_frequency)
    take("start_date", v.parse_date)
    take("end_date", v.parse_optional_date)
    if clean.get("start_date") and clean.get("end_date") and clean["end_date"] < clean["start_date"]:
        fields.errors["end_date"] = f"{clean['end_date']} is before start_date {clean['start_date']}"
    try:
        clean.update(v.parse_payment_details(raw))
    except v.ValidationError as error:
        fields.errors.update(error.errors)
    errors.extend(f"line {row.line}: {column}: {message}" for column, message in fields.errors.items())
    return clean


def import_contracts(stream: TextIO, actor: Actor | None = None) -> ImportResult:
    """Validate every row, then write everything in the caller's transaction, or nothing."""
    rows, errors = parse_csv(stream)
    if errors:
        raise ImportFailed(errors)
    if not rows:
        raise ImportFailed(["the file has a header but no rows"])

    entities = {e.code: e for e in db.session.scalars(select(LegalEntity))}
    cleaned: list[tuple[_Row, dict]] = [(row, _validate_row(row, entities, errors)) for row in rows]

    contracts: dict[tuple[int, str], _ContractDraft] = {}
    customers_seen: dict[tuple[int, str], tuple[_Row, dict]] = {}
    for row, clean in cleaned:
        if row.entity is None or "contract_ref" not in clean:
            continue
        key = (row.entity.id, clean["contract_ref"])
        draft = contracts.get(key)
        if draft is None:
            contracts[key] = _ContractDraft(row.entity, clean["contract_ref"], row, [row])
        else:
            draft.rows.append(row)
    clean_by_row = {id(row): clean for row, clean in cleaned}

    # Rows of one contract must agree on the contract's fields.
    for draft in contracts.values():
        first = clean_by_row[id(draft.first)]
        for row in draft.rows[1:]:
            clean = clean_by_row[id(row)]
            for column in CONTRACT_COLUMNS:
                if column in first and column in clean and clean[column] != first[column]:
                    errors.append(
                        f"line {row.line}: {column}: {_show(clean[column])} differs from contract "
                        f"{draft.reference}'s {_show(first[column])} (line {draft.first.line}); "
                        f"every line of a contract repeats the contract's {column}"
                    )

    # Contract references that already exist.
    for key in _existing_refs(contracts):
        draft = contracts[key]
        errors.append(
            f"line {draft.first.line}: contract_ref: contract {draft.reference} already exists in {draft.entity.code}"
        )

    # Customers: found by name within the entity, or created once; details must agree.
    existing_customers = _existing_customers({(d.entity.id, clean_by_row[id(d.first)].get("customer")) for d in contracts.values()})
    for row, clean in cleaned:
        if row.entity is None or "customer" not in clean:
            continue
        key = (row.entity.id, clean["customer"])
        customer = existing_customers.get(key)
        if customer is not None:
            method = clean.get("payment_method")
            if method is not None and method != customer.payment_method and (row.values["payment_method"] or method != "manual"):
                errors.append(
                    f"line {row.line}: payment_method: customer {customer.name} already exists with payment "
                    f"method {customer.payment_method}; change it on the customer's page, not by import"
                )
            continue
        seen = customers_seen.get(key)
        if seen is None:
            customers_seen[key] = (row, clean)
            continue
        first_row, first_clean = seen
        for column in CUSTOMER_COLUMNS:
            if column in first_clean and column in clean and clean[column] != first_clean[column]:
                errors.append(
                    f"line {row.line}: {column}: {_show(clean[column])} differs from {_show(first_clean[column])} "
                    f"given for customer {clean['customer']} on line {first_row.line}"
                )

    if errors:
        raise ImportFailed(sorted(errors, key=_line_number))  # stable: columns stay in file order

    # Everything is valid: write it.
    created_customers: dict[tuple[int, str], Customer] = {}
    for key, (_row, clean) in customers_seen.items():
        customer = Customer(
            legal_entity_id=key[0],
            name=clean["customer"],
            email=clean.get("customer_email"),
            payment_method=clean["payment_method"],
            iban=clean.get("iban"),
            mandate_reference=clean.get("mandate_reference"),
            mandate_date=clean.get("mandate_date"),
        )
        db.session.add(customer)
        created_customers[key] = customer
    db.session.flush()

    line_count = 0
    for (entity_id, reference), draft in contracts.items():
        first = clean_by_row[id(draft.first)]
        customer = existing_customers.get((entity_id, first["customer"])) or created_customers[(entity_id, first["customer"])]
        contract = Contract(
            legal_entity_id=entity_id,
            customer_id=customer.id,
            reference=reference,
            status="active",
            currency=first["currency"],
            frequency=first["frequency"],
            start_date=first["start_date"],
            end_date=first["end_date"],
        )
        for position, row in enumerate(draft.rows, start=1):
            clean = clean_by_row[id(row)]
            contract.lines.append(
                ContractLine(
                    position=position,
                    description=clean["description"],
                    quantity=clean["quantity"],
                    unit_price=clean["unit_price"],
                    vat_rate=clean["tax_rate"],
                )
            )
            line_count += 1
        db.session.add(contract)
    db.session.flush()
    result = ImportResult(contracts=len(contracts), lines=line_count, customers=len(created_customers))
    for entity_id in {key[0] for key in contracts}:
        record(
            "contracts.imported", "legal_entity", entity_id, actor or Actor.system("cli"),
            legal_entity_id=entity_id,
            contracts=sum(1 for key in contracts if key[0] == entity_id),
            references=sorted(ref for eid, ref in contracts if eid == entity_id)[:50],
        )
    return result


def import_contracts_text(text: str, actor: Actor | None = None) -> ImportResult:
    return import_contracts(io.StringIO(text), actor)


def _existing_refs(contracts: dict) -> set:
    by_entity: dict[int, list[str]] = {}
    for entity_id, reference in contracts:
        by_entity.setdefault(entity_id, []).append(reference)
    found = set()
    for entity_id, refs in by_entity.items():
        for start in range(0, len(refs), 1000):
            chunk = refs[start:start + 1000]
            found.update(
                (entity_id, ref)
                for ref in db.session.scalars(
                    select(Contract.reference).where(Contract.legal_entity_id == entity_id, Contract.reference.in_(chunk))
                )
            )
    return found


def _existing_customers(keys: Iterable[tuple[int, str | None]]) -> dict[tuple[int, str], Customer]:
    by_entity: dict[int, set[str]] = {}
    for entity_id, name in keys:
        if name:
            by_entity.setdefault(entity_id, set()).add(name)
    found: dict[tuple[int, str], Customer] = {}
    for entity_id, names in by_entity.items():
        names_list = sorted(names)
        for start in range(0, len(names_list), 1000):
            for customer in db.session.scalars(
                select(Customer).where(Customer.legal_entity_id == entity_id, Customer.name.in_(names_list[start:start + 1000]))
            ):
                found[(entity_id, customer.name)] = customer
    return found


def _show(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, (date, Decimal)):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


def _line_number(message: str) -> int:
    try:
        return int(message.split(":", 1)[0].removeprefix("line "))
    except ValueError:
        return 0
