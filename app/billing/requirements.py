"""What the law requires an invoice to state about its parties, checked before a contract is billed.

Pure: plain values in, reasons a person can act on out. A contract whose invoice would lack one
of these is reported by the billing run (the planner's error) and the others are billed.

- § 14 (4) UStG, VAT directive art. 226: the seller's full address and VAT ID or tax number; the
  buyer's name and full address.
- XRechnung 3.0 (when the customer has a buyer reference, BT-10): the seller's contact (BR-DE-2,
  -5, -6, -7), the seller's and buyer's postcode (BR-DE-4, -9) and electronic addresses (BT-34,
  BT-49, mandatory in XRechnung).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.addresses import PostalAddress


@dataclass(frozen=True)
class Seller:
    address: PostalAddress
    vat_id: str | None
    tax_number: str | None
    electronic_address: str | None = None  # BT-34 (the finance e-mail)
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    registration_id: str | None = None  # BT-30


@dataclass(frozen=True)
class Buyer:
    name: str
    address: PostalAddress
    vat_id: str | None = None
    buyer_reference: str | None = None
    electronic_address: str | None = None  # BT-49 (the customer's e-mail)


SELLER_FIX = "fill it in under Settings > Legal entities"


def party_problems(seller: Seller, buyer: Buyer) -> list[str]:
    """Why an invoice from `seller` to `buyer` would not be a lawful invoice (empty: it would be)."""
    problems: list[str] = []
    missing = seller.address.missing()
    if missing:
        problems.append(f"the legal entity's address lacks the {_listed(missing)}: {SELLER_FIX}")
    if not seller.vat_id and not seller.tax_number:
        problems.append(f"the legal entity has neither a VAT ID nor a tax number, one of which every invoice "
                        f"states: {SELLER_FIX}")
    elif not seller.vat_id and not seller.registration_id:
        # A tax number (BT-32) states the tax but does not identify the seller to EN 16931 (BR-CO-26),
        # e.g. a § 19 UStG small business without VAT ID.
        problems.append("the legal entity has neither a VAT ID nor a registration ID, one of which identifies the "
                        f"seller on an e-invoice (BR-CO-26): {SELLER_FIX}")
    if not buyer.name.strip():
        problems.append("the customer has no name")
    missing = buyer.address.missing()
    if missing:
        what = "no address" if buyer.address.is_empty else f"an address without {_listed(missing)}"
        problems.append(f"customer {buyer.name} has {what}: fill it in on the customer's page")
    if buyer.buyer_reference:
        problems += _xrechnung_problems(seller, buyer)
    return problems


def _xrechnung_problems(seller: Seller, buyer: Buyer) -> list[str]:
    lacking_seller = [what for what, value in (
        ("contact name", seller.contact_name), ("contact phone", seller.contact_phone),
        ("contact e-mail", seller.contact_email), ("finance e-mail (electronic address)", seller.electronic_address),
        ("postcode", seller.address.postcode)) if not value]
    lacking_buyer = [what for what, value in (
        ("e-mail (electronic address)", buyer.electronic_address), ("postcode", buyer.address.postcode)) if not value]
    problems = []
    if lacking_seller:
        problems.append(f"customer {buyer.name} has a buyer reference, so its invoices are XRechnung invoices, "
                        f"which need the legal entity's {_listed(lacking_seller)}: {SELLER_FIX}")
    if lacking_buyer:
        problems.append(f"customer {buyer.name} has a buyer reference, so its invoices are XRechnung invoices, "
                        f"which need the customer's {_listed(lacking_buyer)}: fill it in on the customer's page")
    return problems


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
