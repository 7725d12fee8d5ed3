"""Complete parties on a real database: the billing run refuses what the law would miss, the XML
states seller and buyer in full (XRechnung when the customer has a buyer reference), and the CSV
carries the customer's party with or without the new columns."""
from datetime import date

import facturx
from lxml import etree
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.documents.einvoice import GUIDELINE, NS, XRECHNUNG_GUIDELINE, build_cii_xml
from app.documents.pdf import render_pdf
from app.extensions import db
from app.models import BillingRunItem, Contract, Customer, Invoice, LegalEntity
from app.records.importer import ImportFailed, import_contracts_text
from tests.factories import make_contract, make_entity

AS_OF = date(2026, 11, 26)
START = date(2026, 11, 1)
SELLER = dict(name="Arbill Demo GmbH", vat_id="DE136695976", tax_number="181/815/08155",
              registration_id="HRB 123456 B", address_line1="Friedrichstraße 68", address_line2="Aufgang B",
              postcode="10117", city="Berlin", subdivision="Berlin", contact_name="Anna Schmidt",
              contact_phone="+49 30 1234567", contact_email="ar@arbill.example", finance_email="finance@arbill.example")


def run(entity):
    result = start_billing_run(entity, AS_OF, "cli", Actor.system("test"), enqueue=False)
    assert result.started, result.message
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return result.run


def reason(billing_run, contract) -> str | None:
    item = db.session.scalar(select(BillingRunItem).where(BillingRunItem.billing_run_id == billing_run.id,
                                                          BillingRunItem.contract_id == contract.id))
    return item.reason if item.status == "failed" else None


def xpath(xml: bytes, path: str) -> list[str]:
    found = etree.fromstring(xml).xpath(path, namespaces=NS)
    return [node if isinstance(node, str) else node.text for node in found]


# ------------------------------------------------------------------ the billing run
def test_a_contract_whose_customer_has_no_address_is_reported_and_the_others_are_billed(db_session):
    entity = make_entity()
    good = make_contract(entity, "GOOD", start=START)
    nowhere = make_contract(entity, "NOWHERE", start=START, customer="Nowhere Ltd")
    no_country = make_contract(entity, "NO-COUNTRY", start=START, customer="Somewhere Ltd")
    for contract, values in ((nowhere, dict(address_line1=None, postcode=None, city=None, country=None)),
                             (no_country, dict(country=None))):
        for field, value in values.items():
            setattr(contract.customer, field, value)
    db.session.commit()
    billing_run = run(entity)
    assert billing_run.status == "completed_with_errors"
    assert (billing_run.contracts_failed, billing_run.invoices_created) == (2, 1)
    assert reason(billing_run, nowhere) == "customer Nowhere Ltd has no address: fill it in on the customer's page"
    assert reason(billing_run, no_country) == (
        "customer Somewhere Ltd has an address without country: fill it in on the customer's page")
    assert [i.contract_id for i in db.session.scalars(select(Invoice))] == [good.id]


def test_a_seller_without_address_or_tax_id_bills_nothing_and_says_why(db_session):
    entity = make_entity(vat_id=None, address_line1=None, postcode=None, city=None)
    contract = make_contract(entity, "C-1", start=START)
    db.session.commit()
    billing_run = run(entity)
    assert reason(billing_run, contract) == (
        "the legal entity's address lacks the street and city: fill it in under Settings > Legal entities; "
        "the legal entity has neither a VAT ID nor a tax number, one of which every invoice states: fill it in "
        "under Settings > Legal entities")
    assert billing_run.invoices_created == 0
    # A tax number states the tax, but EN 16931 identifies the seller by VAT ID or registration (BR-CO-26).
    entity.tax_number, entity.address_line1, entity.city = "181/815/08155", "Ring 1", "Berlin"
    db.session.commit()
    billing_run = run(entity)
    assert billing_run.invoices_created == 0 and "BR-CO-26" in reason(billing_run, contract)
    # Fixed, the retry bills it.
    entity.registration_id = "HRB 12345 B"
    db.session.commit()
    assert run(entity).invoices_created == 1


# ------------------------------------------------------------------ the e-invoice
def invoice_for(customer_values: dict, po_reference: str | None = None) -> Invoice:
    entity = make_entity(**SELLER)
    contract = make_contract(entity, "C-1", start=START, customer="Bundesamt für Beispiele")
    for field, value in customer_values.items():
        setattr(contract.customer, field, value)
    contract.po_reference = po_reference
    db.session.commit()
    assert run(entity).invoices_created == 1
    return db.session.scalar(select(Invoice))


def test_the_xml_states_seller_and_buyer_in_full(db_session):
    invoice = invoice_for(dict(address_line1="ul. Marszałkowska 1", postcode="00-514", city="Warszawa",
                               subdivision="mazowieckie", country="PL", vat_id="PL5260250274"), po_reference="PO-77")
    xml = build_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    seller, buyer = "//ram:SellerTradeParty", "//ram:BuyerTradeParty"
    assert xpath(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [GUIDELINE]
    assert xpath(xml, "//ram:BuyerReference") == []
    assert xpath(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID") == ["HRB 123456 B"]  # BT-30
    assert xpath(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == ["DE136695976"]  # BT-31
    assert xpath(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']") == ["181/815/08155"]  # BT-32
    contact = f"{seller}/ram:DefinedTradeContact"
    assert xpath(xml, f"{contact}/ram:PersonName") == ["Anna Schmidt"]  # BT-41
    assert xpath(xml, f"{contact}/ram:TelephoneUniversalCommunication/ram:CompleteNumber") == ["+49 30 1234567"]
    assert xpath(xml, f"{contact}/ram:EmailURIUniversalCommunication/ram:URIID") == ["ar@arbill.example"]  # BT-43
    address = f"{seller}/ram:PostalTradeAddress"
    assert [xpath(xml, f"{address}/ram:{name}") for name in (
        "PostcodeCode", "LineOne", "LineTwo", "CityName", "CountryID", "CountrySubDivisionName")] == [
        ["10117"], ["Friedrichstraße 68"], ["Aufgang B"], ["Berlin"], ["DE"], ["Berlin"]]
    address = f"{buyer}/ram:PostalTradeAddress"
    assert [xpath(xml, f"{address}/ram:{name}") for name in (
        "PostcodeCode", "LineOne", "CityName", "CountryID", "CountrySubDivisionName")] == [
        ["00-514"], ["ul. Marszałkowska 1"], ["Warszawa"], ["PL"], ["mazowieckie"]]
    assert xpath(xml, f"{buyer}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == ["PL5260250274"]  # BT-48
    assert xpath(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == ["PO-77"]  # BT-13
    assert xpath(xml, "//ram:ContractReferencedDocument/ram:IssuerAssignedID") == ["C-1"]  # BT-12

    from pypdf import PdfReader
    from io import BytesIO
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(BytesIO(render_pdf(invoice, xml))).pages).split())
    for printed in ("00-514 Warszawa, mazowieckie", "Poland", "PO-77", "Purchase order", "Tax number 181/815/08155",
                    "Registration HRB 123456 B", "Anna Schmidt", "+49 30 1234567"):
        assert printed in text, printed


def test_a_buyer_reference_makes_an_xrechnung_that_the_factur_x_xsd_accepts(db_session):
    invoice = invoice_for(dict(buyer_reference="04011000-12345-34", email="rechnung@bund.example"))
    xml = build_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert xpath(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [XRECHNUNG_GUIDELINE]  # BT-24
    assert xpath(xml, "//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference") == ["04011000-12345-34"]  # BT-10
    assert xpath(xml, "//ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']") == [
        "finance@arbill.example"]  # BT-34
    assert xpath(xml, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']") == [
        "rechnung@bund.example"]  # BT-49
    assert xpath(xml, "//ram:SellerTradeParty/ram:DefinedTradeContact/ram:PersonName") == ["Anna Schmidt"]


def test_an_xrechnung_customer_needs_the_sellers_contact_before_it_is_billed(db_session):
    entity = make_entity()  # no contact, no finance e-mail
    contract = make_contract(entity, "C-1", start=START, customer="Bundesamt")
    contract.customer.buyer_reference = "04011000-12345-34"
    db.session.commit()
    billing_run = run(entity)
    assert reason(billing_run, contract) == (
        "customer Bundesamt has a buyer reference, so its invoices are XRechnung invoices, which need the legal "
        "entity's contact name, contact phone, contact e-mail and finance e-mail (electronic address): fill it in "
        "under Settings > Legal entities")


# ------------------------------------------------------------------ the CSV
HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")
PARTY_HEADER = (HEADER + ",customer_address_line1,customer_address_line2,customer_postcode,customer_city,"
                "customer_country,customer_vat_id,buyer_reference,po_reference")
ROW = "DE01,{ref},{customer},ap@x.example,Hosting,1,49.00,EUR,19,monthly,2026-11-01,,,,,"


def test_the_csv_carries_the_customers_party_and_the_purchase_order(db_session):
    make_entity()
    db.session.commit()
    rows = [ROW.format(ref="C-1", customer="Bolt") + ",Vana-Lõuna 15,,10134,Tallinn,ee,EE 102090374,,PO-1",
            ROW.format(ref="C-2", customer="Bolt") + ",Vana-Lõuna 15,,10134,Tallinn,EE,EE102090374,,PO-2",
            ROW.format(ref="C-3", customer="Bund") + ",Platz 1,Haus 2,10117,Berlin,DE,,04011000-12345-34,"]
    result = import_contracts_text("\n".join([PARTY_HEADER, *rows]) + "\n")
    assert (result.contracts, result.customers) == (3, 2)
    bolt = db.session.scalar(select(Customer).where(Customer.name == "Bolt"))
    assert bolt.postal_address.printed_lines("DE") == ["Vana-Lõuna 15", "10134 Tallinn", "Estonia"]
    assert bolt.vat_id == "EE102090374"
    bund = db.session.scalar(select(Customer).where(Customer.name == "Bund"))
    assert (bund.address_line2, bund.buyer_reference) == ("Haus 2", "04011000-12345-34")
    assert [c.po_reference for c in db.session.scalars(select(Contract).order_by(Contract.reference))] == [
        "PO-1", "PO-2", None]
    # A file without the new columns still imports (its customers have no address yet).
    result = import_contracts_text(HEADER + "\n" + ROW.format(ref="C-4", customer="Plain") + "\n")
    assert result.customers == 1
    assert db.session.scalar(select(Customer).where(Customer.name == "Plain")).postal_address.is_empty


def test_a_csv_with_bad_party_columns_imports_nothing_and_names_every_row(db_session):
    make_entity()
    db.session.commit()
    rows = [ROW.format(ref="C-1", customer="Bolt") + ",Vana-Lõuna 15,,10134,Tallinn,EE,EE102090375,,",
            ROW.format(ref="C-2", customer="Bolt") + ",Vana-Lõuna 16,,10134,Tallinn,EE,,,",
            ROW.format(ref="C-3", customer="Kaisha") + ",Marunouchi 1,,100-0005,Tokyo,JP,T5835678256246,,",
            ROW.format(ref="C-4", customer="Nowhere") + ",Main St 1,,12345,Springfield,XX,,,",
            ROW.format(ref="C-5", customer="Bund") + ",Platz 1,,10117,,DE,,,",
            ROW.format(ref="C-6", customer="Postal") + ",Platz 1,,10\x07117,Berlin,DE,,,"]
    try:
        import_contracts_text("\n".join([PARTY_HEADER, *rows]) + "\n")
    except ImportFailed as failure:
        errors = failure.errors
    else:
        raise AssertionError("the import went through")
    assert errors == [
        "line 2: customer_vat_id: 'EE102090375' is not a valid Estonia VAT ID: its check digit does not match "
        "(a typing error?)",
        "line 3: customer_address_line1: 'Vana-Lõuna 16' differs from 'Vana-Lõuna 15' given for customer Bolt on "
        "line 2",
        "line 4: customer_vat_id: 'T5835678256246' is a Japanese registration number, not a VAT ID: Japan has no VAT "
        "identification number in the EN 16931 sense (BT-31 needs a country prefix); enter it as the tax number or "
        "the registration ID",
        "line 5: customer_country: 'XX' is not an ISO 3166 country code (two letters, e.g. DE, FR, JP)",
        "line 6: customer_city: city is required for a postal address (given: address line 1, postcode, country)",
        "line 7: customer_postcode: postcode contains the control character U+0007 at character 3; it must be one "
        "line of plain text",
    ]
    assert db.session.scalar(select(Customer.id)) is None and db.session.scalar(select(LegalEntity.id))
