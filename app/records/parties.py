"""Field rules for the parties of an invoice: postal addresses, VAT IDs, tax numbers, registration
ids, contacts and the buyer's references. The entity and customer forms, the CSV importer and the
CLI all call these (app/records/validation.py has the rules every record shares).

VAT IDs and tax numbers are checked per country with python-stdnum: the country's format and check
digit, nothing is looked up online (VIES).
"""
from __future__ import annotations

import re
from typing import Any

from app.addresses import country_name, is_country
from app.errors import FieldError
from app.models import Contract, Customer, LegalEntity
from app.records import validation as v


# ------------------------------------------------------------------ addresses
def parse_country(value: str | None, what: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code (DE, fr → FR); refused when no such country exists."""
    code = v.one_line(v.required(value, what), what).upper()
    if not re.fullmatch(r"[A-Z]{2}", code) or not is_country(code):
        shown = code if len(code) <= 20 else code[:20] + "…"
        raise FieldError(f"{shown!r} is not an ISO 3166 country code (two letters, e.g. DE, FR, JP)")
    return code


def parse_optional_country(value: str | None, what: str = "country") -> str | None:
    return parse_country(value, what) if v.optional(value) else None


_POSTCODE_CHARACTERS = re.compile(r"[A-Za-z0-9 \-]+")


def parse_postcode(value: str | None) -> str | None:
    """A postcode: letters, digits, spaces and '-' (10117, 00-514, 100-0001, SW1A 1AA); Japan's 〒 is dropped."""
    text = v.parse_optional_text((value or "").replace("〒", ""), "postcode", v.column_length(Customer.postcode))
    if text is None:
        return None
    text = re.sub(r"\s+", " ", text).upper()
    if not _POSTCODE_CHARACTERS.fullmatch(text):
        raise FieldError(f"postcode {text!r} may hold only letters, digits, spaces and '-' (e.g. 10117, 00-514)")
    return text


# The address fields as the forms and the CLI name them; the CSV names them customer_<field>.
ADDRESS_FIELDS = ("address_line1", "address_line2", "postcode", "city", "subdivision")
ADDRESS_LABELS = {"address_line1": "address line 1", "address_line2": "address line 2", "postcode": "postcode",
                  "city": "city", "subdivision": "state or region", "country": "country"}


def _text_rule(field: str):
    def parse(value: str | None) -> str | None:
        return v.parse_optional_text(value, ADDRESS_LABELS[field], v.column_length(getattr(Customer, field)))
    return parse


ADDRESS_RULES = {"address_line1": _text_rule("address_line1"), "address_line2": _text_rule("address_line2"),
                 "postcode": parse_postcode, "city": _text_rule("city"), "subdivision": _text_rule("subdivision")}


def take_address(fields: v.Fields, names: dict[str, str] | None = None, *, country_given: bool = True) -> None:
    """Parse a postal address into `fields.clean` under its field names (ADDRESS_FIELDS, and
    `country` when `country_given`); `names` maps them to the names the input uses (CSV columns).

    An address may be left empty (the billing run names the contracts it stops); once any part is
    given, a street line, the city and (for a customer) the country are required too.
    """
    names = names or {}
    for field in ADDRESS_FIELDS:
        fields.take(names.get(field, field), ADDRESS_RULES[field])
    if country_given:
        fields.take(names.get("country", "country"), parse_optional_country)
    given = [field for field in (*ADDRESS_FIELDS, *(("country",) if country_given else ()))
             if v.optional(fields.raw.get(names.get(field, field)))]
    if given:
        needed = ("address_line1", "city", *(("country",) if country_given else ()))
        for field in needed:
            key = names.get(field, field)
            if field not in given and key not in fields.errors:
                fields.errors[key] = (f"{ADDRESS_LABELS[field]} is required for a postal address "
                                      f"(given: {', '.join(ADDRESS_LABELS[f] for f in given)})")


# ------------------------------------------------------------------ tax identifiers
# Prefixes EN 16931 (BR-CO-09) takes besides ISO 3166 codes: Greece's EL, Northern Ireland's XI.
_VAT_PREFIXES = {"EL": "GR", "XI": "GB"}
_STDNUM_REASONS = {"InvalidChecksum": "its check digit does not match (a typing error?)",
                   "InvalidLength": "it has the wrong number of characters",
                   "InvalidFormat": "it has characters where the format wants others",
                   "InvalidComponent": "a part of it is not a possible value"}
_JAPANESE_REGISTRATION = re.compile(r"(JP)?T?\d{13}")


def _stdnum_reason(error: Exception) -> str:
    return _STDNUM_REASONS.get(type(error).__name__, str(error).rstrip(".").lower())


def _compact(text: str) -> str:
    return re.sub(r"[\s.\-/]+", "", text).upper()


def parse_vat_id(value: str | None, what: str = "VAT ID") -> str | None:
    """A VAT identification number (BT-31 / BT-48): its country's prefix, then a number valid for that
    country (format and check digit); stored compact (DE136695976). Empty → None."""
    from stdnum import get_cc_module
    from stdnum.eu import vat as eu_vat
    from stdnum.exceptions import ValidationError as StdnumError

    text = v.one_line(v.optional(value), what)
    if text is None:
        return None
    vat_id = _compact(text)
    if _JAPANESE_REGISTRATION.fullmatch(vat_id):
        raise FieldError(f"{text!r} is a Japanese registration number, not a VAT ID: Japan has no VAT "
                         "identification number in the EN 16931 sense (BT-31 needs a country prefix); "
                         "enter it as the tax number or the registration ID")
    prefix = vat_id[:2]
    if not re.fullmatch(r"[A-Z]{2}", prefix) or not (is_country(prefix) or prefix in _VAT_PREFIXES):
        raise FieldError(f"{text!r} does not start with a country code: a VAT ID begins with the ISO code of "
                         "the country that issued it (e.g. DE136695976, FR40303265045; EL for Greece)")
    if len(vat_id) > v.column_length(Customer.vat_id):
        raise FieldError(f"{text!r} is too long for a VAT ID")
    country = _VAT_PREFIXES.get(prefix, prefix)
    if prefix.lower() in eu_vat.MEMBER_STATES:
        module, candidates = eu_vat, (vat_id,)
    else:
        module, candidates = get_cc_module(prefix.lower(), "vat"), (vat_id, vat_id[2:])
    if module is None:
        if not re.fullmatch(r"[A-Z]{2}[A-Z0-9+*]{2,13}", vat_id):
            raise FieldError(f"{text!r} is not a VAT ID (country code, then 2-13 letters or digits)")
        return vat_id
    error: Exception | None = None
    for candidate in candidates:
        try:
            module.validate(candidate)
            return vat_id
        except StdnumError as problem:
            error = error or problem
    raise FieldError(f"{text!r} is not a valid {country_name(country)} VAT ID: {_stdnum_reason(error)}")


def parse_tax_number(value: str | None, country: str | None) -> str | None:
    """The seller's tax number (BT-32) as its tax office gives it, checked where we know the country's
    format: DE (Steuernummer, 10-13 digits), FR (numéro fiscal or SIREN), JP (T + corporate number)."""
    from stdnum.exceptions import ValidationError as StdnumError

    text = v.parse_optional_text(value, "tax number", v.column_length(LegalEntity.tax_number))
    if text is None:
        return None
    text = re.sub(r"\s+", " ", text)
    try:
        if country == "DE":
            from stdnum.de import stnr
            stnr.validate(text)
        elif country == "FR":
            from stdnum.fr import nif, siren
            if not (nif.is_valid(text) or siren.is_valid(text)):
                siren.validate(text)
        elif country == "JP":
            _japanese_number(text)
        elif not re.fullmatch(r"[A-Za-z0-9 ./\-]{3,}", text) or sum(ch.isdigit() for ch in text) < 3:
            raise FieldError(f"tax number {text!r} may hold only letters, digits, spaces, '.', '/' and '-' "
                             "(at least 3 digits)")
    except StdnumError as error:
        raise FieldError(f"{text!r} is not a valid {country_name(country)} tax number: {_stdnum_reason(error)}"
                         ) from None
    return text


def _japanese_number(text: str) -> None:
    """A Japanese corporate number (13 digits) or qualified invoice registration number (T + those)."""
    from stdnum.jp import cn

    digits = _compact(text).removeprefix("JP").removeprefix("T")
    cn.validate(digits)


def parse_registration_id(value: str | None, country: str | None) -> str | None:
    """The seller's legal registration (BT-30): SIREN or SIRET in France, the corporate number in
    Japan, the registry code in Estonia; elsewhere (a German Handelsregister entry "HRB 12345 B") as written."""
    from stdnum.exceptions import ValidationError as StdnumError

    text = v.parse_optional_text(value, "registration ID", v.column_length(LegalEntity.registration_id))
    if text is None:
        return None
    try:
        if country == "FR":
            from stdnum.fr import siren, siret
            (siret if len(_compact(text)) == 14 else siren).validate(text)
            return _compact(text)
        if country == "JP":
            _japanese_number(text)
        if country == "EE":
            from stdnum.ee import registrikood
            registrikood.validate(text)
    except StdnumError as error:
        raise FieldError(f"{text!r} is not a valid {country_name(country)} registration ID: "
                         f"{_stdnum_reason(error)}") from None
    return text


def registration_scheme(country: str, registration_id: str) -> str | None:
    """The ISO 6523 scheme of a registration ID where we know it (BT-30-1): SIREN 0002, SIRET 0009."""
    if country == "FR":
        return {9: "0002", 14: "0009"}.get(len(registration_id))
    return None


# ------------------------------------------------------------------ contact and references
def parse_phone(value: str | None) -> str | None:
    """A telephone number (BT-42): digits, spaces, + - / ( ) and dots, at least three digits."""
    text = v.parse_optional_text(value, "phone", v.column_length(LegalEntity.contact_phone))
    if text is None:
        return None
    if not re.fullmatch(r"[0-9 +\-/().]+", text) or sum(ch.isdigit() for ch in text) < 3:
        raise FieldError(f"phone {text!r} may hold only digits, spaces and + - / ( ) . (e.g. +49 30 1234567)")
    return text


def parse_contact_name(value: str | None) -> str | None:
    return v.parse_optional_text(value, "contact name", v.column_length(LegalEntity.contact_name))


def parse_buyer_reference(value: str | None) -> str | None:
    """BT-10: the reference the buyer asks invoices to carry (a German authority's Leitweg-ID)."""
    return v.parse_optional_text(value, "buyer reference", v.column_length(Customer.buyer_reference))


def parse_po_reference(value: str | None) -> str | None:
    """BT-13: the buyer's purchase order number for a contract."""
    return v.parse_optional_text(value, "purchase order reference", v.column_length(Contract.po_reference))


def xrechnung_problem(buyer_reference: Any, email: Any) -> str | None:
    """A buyer reference makes the invoice an XRechnung, which needs the buyer's electronic address (BT-49)."""
    if buyer_reference and not email:
        return ("a customer with a buyer reference gets XRechnung invoices, which need the customer's e-mail "
                "address (BT-49): fill in the e-mail")
    return None
