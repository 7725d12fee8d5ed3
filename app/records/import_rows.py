"""One row of the contracts CSV: its columns and the field rules every form shares, checked on its own
(what a row is checked against in other rows and the database is the importer's, app/records/importer.py)."""
from __future__ import annotations

from app.models import LegalEntity
from app.records import parties as p
from app.records import validation as v

COLUMNS = (
    "entity", "contract_ref", "customer", "customer_email", "description", "quantity", "unit_price",
    "currency", "tax_rate", "frequency", "start_date", "end_date", "payment_method", "iban",
    "mandate_reference", "mandate_date",
)
# Columns a file may leave out (files made before them keep importing): the customer's party, the
# contract's purchase order, and the line's tax code.
CUSTOMER_PARTY_COLUMNS = (
    "customer_address_line1", "customer_address_line2", "customer_postcode", "customer_city", "customer_country",
    "customer_vat_id", "buyer_reference",
)
OPTIONAL_COLUMNS = (*CUSTOMER_PARTY_COLUMNS, "po_reference", "tax_code")
# Columns that describe the contract (or its customer) and must agree on every row of one contract.
CONTRACT_COLUMNS = ("customer", "currency", "frequency", "start_date", "end_date", "po_reference")
CUSTOMER_COLUMNS = ("customer_email", "payment_method", "iban", "mandate_reference", "mandate_date",
                    *CUSTOMER_PARTY_COLUMNS)
# The CSV's address columns by the address field they fill.
ADDRESS_COLUMNS = {"address_line1": "customer_address_line1", "address_line2": "customer_address_line2",
                   "postcode": "customer_postcode", "city": "customer_city", "country": "customer_country"}


def check_row(raw: dict[str, str], entities: dict[str, LegalEntity]) -> tuple[LegalEntity | None, dict, dict]:
    """One row's entity, clean values and problems ({column: reason}), by the field rules of every form."""
    fields = v.Fields(raw)
    clean, take = fields.clean, fields.take

    entity = None
    code = raw["entity"].upper()
    if not code:
        fields.errors["entity"] = "value is required"
    elif code not in entities:
        shown = code if len(code) <= 40 else code[:40] + "…"
        fields.errors["entity"] = f"unknown legal entity {shown!r} (add it with `flask entities add`)"
    else:
        entity = entities[code]
    take("contract_ref", v.parse_contract_reference)
    take("customer", v.parse_customer_name)
    take("customer_email", v.parse_customer_email)
    take("description", v.parse_line_description)
    take("quantity", v.parse_quantity)
    take("unit_price", v.parse_unit_price)
    take("currency", v.parse_currency)
    if raw.get("tax_rate") or not raw.get("tax_code"):  # with a tax code, the rate may be left empty
        take("tax_rate", v.parse_rate)
    else:
        clean["tax_rate"] = None
    take("frequency", v.parse_frequency)
    take("start_date", v.parse_date)
    take("end_date", v.parse_optional_date)
    if clean.get("start_date") and clean.get("end_date") and clean["end_date"] < clean["start_date"]:
        fields.errors["end_date"] = f"{clean['end_date']} is before start_date {clean['start_date']}"
    try:
        clean.update(v.parse_payment_details(raw, today=entity.today() if entity is not None else None))
    except v.ValidationError as error:
        fields.errors.update(error.errors)
    p.take_address(fields, ADDRESS_COLUMNS)
    take("customer_vat_id", p.parse_vat_id)
    take("buyer_reference", p.parse_buyer_reference)
    take("po_reference", p.parse_po_reference)
    problem = p.xrechnung_problem(clean.get("buyer_reference"), clean.get("customer_email", "invalid"))
    if problem and "customer_email" not in fields.errors:
        fields.errors["buyer_reference"] = problem.replace("fill in the e-mail", "fill in customer_email")
    return entity, clean, fields.errors
