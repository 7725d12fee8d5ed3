"""Documents are checked, not hoped: the EN 16931 schematron, the fonts, and text that no document can hold.

Every case is made through the real services (legal entity, customer, contract, billing run) and
rendered by the document service, which stores a document only when the XSD and the EN 16931
schematron find nothing fatal. A new case (reverse charge, exempt, credit notes …) is one entry in
CASES.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.agents.builtin.invoice_delivery import deliver
from app.delivery.service import request_resend
from app.documents.einvoice import NS, build_cii_xml
from app.documents.glyphs import MissingGlyph, coverage, stylesheet_families
from app.documents.service import get_or_render_document, stored_document
from app.documents.validation import EInvoiceRejected, check_einvoice, validate_einvoice
from app.extensions import db
from app.models import BillingRunItem, Contract, ContractLine, Customer, Invoice, InvoiceDelivery, InvoiceDocument
from app.records.contracts import create_contract
from app.records.customers import create_customer
from app.records.credit_notes import CreditRequest, credit_invoice
from app.records.entities import EntityInput, create_legal_entity

AS_OF = date(2026, 11, 26)
ACTOR = Actor.system("test")
SEPA_ENTITY = dict(iban="DE89370400440532013000", bic="COBADEFFXXX", sepa_creditor_id="DE98ZZZ09999999999")
GERMAN_SELLER = dict(code="DE01", name="Arbill Demo GmbH", country="DE", currency="EUR", vat_id="DE136695976",
                     timezone="Europe/Berlin", locale="de_DE", address_line1="Friedrichstraße 68", postcode="10117",
                     city="Berlin", finance_email="finance@arbill.example", **SEPA_ENTITY)
POLISH_BUSINESS = dict(name="Kowalski Sp. z o.o.", vat_id="PL5260250274", address_line1="ul. Marszałkowska 1",
                       postcode="00-514", city="Warszawa", country="PL")


# ------------------------------------------------------------------ the case builder
@dataclass(frozen=True)
class Case:
    """One invoice as a finance team makes it: who sells, to whom, what, how often; and what the XML must say."""

    name: str
    lines: tuple[tuple[str, ...], ...]  # description, quantity, unit price, VAT rate[, tax code]
    categories: frozenset[str]  # the VAT category codes (BT-118) the XML must carry
    entity: dict = field(default_factory=lambda: dict(GERMAN_SELLER))
    customer: dict = field(default_factory=dict)  # the customer form's fields, over a German business customer
    currency: str = "EUR"
    frequency: str = "monthly"
    credit: dict | None = None  # credit the invoice (flask invoices credit's options) and check the credit note


CASES = [
    Case("domestic, 19 % and 7 %", (("Software subscription", "1", "49.00", "19"),
                                      ("Handbook", "2", "12.50", "7")), frozenset("S")),
    Case("JPY, Japanese customer and line names",
         (("クラウド会計 月額プラン", "3", "1200", "19"), ("導入サポート（東京）", "1", "50000", "19")),
         frozenset("S"), currency="JPY",
         customer=dict(name="株式会社サンプル商事", vat_id="", address_line1="丸の内1-1-1", postcode="100-0005",
                       city="千代田区", subdivision="東京都", country="JP")),
    Case("French seller, 20 % and 5.5 %", (("Abonnement logiciel", "1", "99.00", "20"),
                                           ("Livre « Facturation »", "1", "18.00", "5.5")), frozenset("S"),
         entity=dict(code="FR01", name="Arbill France SAS", country="FR", currency="EUR", vat_id="FR40303265045",
                     timezone="Europe/Paris", locale="fr_FR", address_line1="12 rue de la Paix", postcode="75002",
                     city="Paris", finance_email="compta@arbill.example", iban="FR1420041010050500013M02606"),
         customer=dict(name="Société Exemple SARL", vat_id="FR83404833048", address_line1="3 place de la Bourse",
                       postcode="69002", city="Lyon", country="FR")),
    Case("SEPA direct debit customer", (("Hosting", "1", "49.00", "19"),), frozenset("S"),
         customer=dict(payment_method="sepa_debit", iban="DE02120300000000202051", mandate_reference="MNDT-2026-0001",
                       mandate_date="2026-01-15")),
    Case("quarterly contract", (("Support, quarterly", "1", "300.00", "19"),), frozenset("S"),
         frequency="quarterly"),
    Case("reverse charge to a Polish business", (("Consulting", "10", "120.00", "", "DE_RC"),), frozenset({"AE"}),
         customer=POLISH_BUSINESS),
    Case("intra-community supply to France", (("Server hardware", "2", "899.00", "", "EU_IC"),), frozenset("K"),
         customer=dict(name="Société Exemple SARL", vat_id="FR83404833048", address_line1="3 place de la Bourse",
                       postcode="69002", city="Lyon", country="FR")),
    Case("export outside the EU", (("Licence", "1", "500.00", "", "EXPORT"),), frozenset("G"),
         customer=dict(name="Example Inc.", vat_id="", address_line1="1 Main Street", postcode="10001",
                       city="New York", subdivision="NY", country="US")),
    Case("exempt medical service beside a standard-rated line",
         (("Medical check-up", "1", "80.00", "", "EXEMPT"), ("Report copy", "1", "10.00", "19")),
         frozenset({"E", "S"})),
    Case("§ 19 UStG small business without VAT ID", (("Webdesign", "1", "800.00", "", "DE_SMALL_BUSINESS"),),
         frozenset("E"), entity={**GERMAN_SELLER, "vat_id": None, "tax_number": "21/815/08150",
                                 "registration_id": "HRA 4711 B"}),
    Case("not subject to VAT", (("Service performed abroad", "1", "300.00", "", "NOT_SUBJECT"),), frozenset("O"),
         entity={**GERMAN_SELLER, "registration_id": "HRB 12345 B"}),
    Case("XRechnung: a public-sector buyer with a buyer reference", (("Hosting", "1", "49.00", "19"),),
         frozenset("S"), entity={**GERMAN_SELLER, "contact_name": "Erika Mustermann", "contact_phone": "+49 30 1234567",
                                 "contact_email": "erika@arbill.example"},
         customer=dict(name="Bundesamt für Beispiele", vat_id="", buyer_reference="991-12345-67",
                       email="rechnung@bund.example")),
    Case("credit note, full", (("Software subscription", "1", "49.00", "19"), ("Handbook", "2", "12.50", "7")),
         frozenset("S"), credit={}),
    Case("credit note, partial by lines, reverse charge", (("Consulting", "10", "120.00", "", "DE_RC"),
                                                            ("Travel", "1", "80.00", "", "DE_RC")),
         frozenset({"AE"}), customer=POLISH_BUSINESS, credit={"lines": (2,)}),
    Case("credit note, partial by amount, two rates", (("Software subscription", "1", "100.00", "19"),
                                                        ("Handbook", "2", "25.00", "7")),
         frozenset("S"), credit={"amount": "50.00"}),
    Case("rebill after a full credit", (("Software subscription", "1", "49.00", "19"),), frozenset("S"),
         credit={"rebill": True}),
]


def issue(case: Case) -> Invoice:
    """The case's legal entity, customer and contract through the record services, billed by a billing run;
    with `case.credit`, the credit note the CLI's options ask for (or, to rebill, the invoice billed again
    after a full credit)."""
    entity = create_legal_entity(EntityInput(**case.entity), ACTOR)
    customer = create_customer(entity, {
        "name": "Musterkunde GmbH", "email": "ap@kunde.example", "vat_id": "DE811907980",
        "address_line1": "Hauptstraße 1", "address_line2": "Buchhaltung", "postcode": "80331", "city": "München",
        "country": "DE", **case.customer}, ACTOR)
    create_contract(entity, {"reference": f"C-{entity.code}-1", "customer_id": str(customer.id),
                             "currency": case.currency, "frequency": case.frequency, "start_date": "2026-10-01"},
                    [dict(zip(("description", "quantity", "unit_price", "vat_rate", "tax_code"), line))
                     for line in case.lines], ACTOR)
    db.session.commit()
    invoice = _bill(entity, case)
    if case.credit is None:
        return invoice
    options = dict(case.credit)
    rebill = options.pop("rebill", False)
    amount = options.pop("amount", None)
    note = credit_invoice(invoice, CreditRequest("Correction", amount=Decimal(amount) if amount else None,
                                                 **options), ACTOR)
    db.session.commit()
    if not rebill:
        return note
    get_or_render_document(note)  # the credit note itself passes too
    return _bill(entity, case, after=invoice)


def _bill(entity, case: Case, after: Invoice | None = None) -> Invoice:
    result = start_billing_run(entity, AS_OF, "cli", ACTOR, enqueue=False)
    assert result.started, result.message
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    query = select(Invoice).where(Invoice.legal_entity_id == entity.id, Invoice.kind == "invoice")
    if after is not None:
        query = query.where(Invoice.id > after.id)
    invoice = db.session.scalar(query.order_by(Invoice.period_start.desc(), Invoice.id.desc()).limit(1))
    failed = db.session.scalars(select(BillingRunItem.reason).where(BillingRunItem.status == "failed")).all()
    assert invoice is not None and invoice.number, f"{case.name}: no invoice issued ({failed})"
    return invoice


def categories(xml: bytes) -> set[str]:
    return set(etree.fromstring(xml).xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
                                           "ram:CategoryCode/text()", namespaces=NS))


def fonts_of(pdf: bytes) -> set[str]:
    names = set()
    for page in PdfReader(BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


# ------------------------------------------------------------------ every case passes EN 16931
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_is_stored_only_after_passing_the_en16931_schematron(app, db_session, case):
    invoice = issue(case)
    document = get_or_render_document(invoice)
    db.session.commit()
    findings = validate_einvoice(document.xml)
    assert [f for f in findings if f.fatal] == []
    assert categories(document.xml) == case.categories
    type_code = etree.fromstring(document.xml).xpath("//rsm:ExchangedDocument/ram:TypeCode/text()", namespaces=NS)
    assert type_code == (["381"] if invoice.kind == "credit_note" else ["380"])
    # BT-83: the invoice's ISO 11649 reference, which passes the schematron with every case
    payment_reference = etree.fromstring(document.xml).xpath(
        "//ram:ApplicableHeaderTradeSettlement/ram:PaymentReference/text()", namespaces=NS)
    assert payment_reference == [invoice.number if invoice.kind == "credit_note" else invoice.creditor_reference]
    assert invoice.kind == "credit_note" or payment_reference[0].startswith("RF")
    xrechnung = invoice.customer.buyer_reference is not None
    assert ("XRECHNUNG" in {f.rule for f in findings}) is xrechnung
    xmp = PdfReader(BytesIO(document.pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert (b"<fx:ConformanceLevel>XRECHNUNG</fx:ConformanceLevel>" in xmp) is xrechnung
    # What the schematron warned about is kept with the document, and it is only warnings.
    assert document.findings == [f.as_dict() for f in findings]
    assert all(f["flag"] == "warning" for f in document.findings)


def test_japanese_names_print_with_noto_cjk_glyphs_not_empty_boxes(app, db_session):
    case = next(c for c in CASES if c.currency == "JPY")
    invoice = issue(case)
    document = get_or_render_document(invoice)
    assert any("Noto-Sans-CJK-JP" in name for name in fonts_of(document.pdf)), fonts_of(document.pdf)
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(document.pdf)).pages)
    for printed in ("株式会社サンプル商事", "クラウド会計", "千代田区", "東京都"):
        assert printed in text
    # A Latin-only invoice does not embed the CJK font.
    latin = issue(replace(CASES[0], entity={**GERMAN_SELLER, "code": "DE02"}))
    assert not any("CJK" in name for name in fonts_of(get_or_render_document(latin).pdf))


# ------------------------------------------------------------------ a fatal rule stops the document
def test_totals_that_do_not_add_up_break_br_co_10(app, db_session):
    invoice = issue(CASES[0])
    root = etree.fromstring(build_cii_xml(invoice))
    [line_total] = root.xpath("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:LineTotalAmount",
                              namespaces=NS)
    line_total.text = "1000.00"
    broken = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    fatal = {f.rule for f in validate_einvoice(broken) if f.fatal}
    assert "BR-CO-10" in fatal
    with pytest.raises(EInvoiceRejected) as raised:
        check_einvoice(broken, "invoice X")
    assert "BR-CO-10: Sum of Invoice line net amount (BT-106)" in str(raised.value)
    assert [f.location for f in raised.value.fatal if f.rule == "BR-CO-10"] == [
        "/CrossIndustryInvoice[1]/SupplyChainTradeTransaction[1]/ApplicableHeaderTradeSettlement[1]"
        "/SpecifiedTradeSettlementHeaderMonetarySummation[1]"]
    # The same document as built passes: the rule is what failed, not the checker.
    assert not [f for f in validate_einvoice(build_cii_xml(invoice)) if f.fatal]


def test_a_delivery_whose_e_invoice_breaks_a_rule_is_stopped_with_the_rule_on_the_invoice_page(
        app, db_session, mail_sink, client_as, runner):
    invoice = issue(CASES[0])
    # A buyer VAT ID without a country prefix, stored before VAT IDs were checked: BR-CO-09.
    db.session.execute(Customer.__table__.update().where(Customer.id == invoice.customer_id)
                       .values(vat_id="XX123456789"))
    db.session.commit()
    assert deliver(invoice.id).status == "failed"
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice.id))
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "BR-CO-09" in delivery.error and "Buyer VAT identifier (BT-48)" in delivery.error
    assert mail_sink.messages() == [] and stored_document(invoice.id) is None
    viewer = client_as("viewer")
    page = viewer.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "BR-CO-09" in page and "shall have a prefix in accordance with ISO code ISO 3166-1 alpha-2" in page
    # The CLI says the same, and exits 1.
    result = runner.invoke(args=["invoices", "validate", invoice.number, "--entity", "DE01", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False and "BR-CO-09" in {f["rule"] for f in report["findings"] if f["flag"] == "fatal"}

    # Corrected, a Resend makes the document and e-mails it.
    db.session.execute(Customer.__table__.update().where(Customer.id == invoice.customer_id)
                       .values(vat_id="DE811907980"))
    resend = request_resend(db.session.get(Invoice, invoice.id), ACTOR)
    db.session.commit()
    assert deliver(invoice.id, delivery_id=resend.id).status == "sent"
    assert len(mail_sink.messages()) == 1 and stored_document(invoice.id) is not None
    page = viewer.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Checked against EN 16931: no errors, 1 warning" in page and "PEPPOL-EN16931-R008" in page
    result = runner.invoke(args=["invoices", "validate", invoice.number, "--entity", "DE01"])
    assert result.exit_code == 0 and "(stored XML)" in result.output and "0 fatal" in result.output


def test_a_document_stored_before_the_checks_is_checked_before_it_is_sent(app, db_session, mail_sink):
    valid, broken = issue(CASES[0]), issue(replace(CASES[0], entity={**GERMAN_SELLER, "code": "DE02"}))
    for invoice in (valid, broken):
        get_or_render_document(invoice)
    # As documents stored before this check were: no findings; one of them with totals that do not add up.
    root = etree.fromstring(stored_document(broken.id).xml)
    root.xpath("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:LineTotalAmount", namespaces=NS)[0].text = "1"
    db.session.execute(InvoiceDocument.__table__.update().values(findings=None))
    db.session.execute(InvoiceDocument.__table__.update().where(InvoiceDocument.invoice_id == broken.id)
                       .values(xml=etree.tostring(root, xml_declaration=True, encoding="UTF-8")))
    db.session.commit()
    assert deliver(valid.id).status == "sent"
    assert [f["rule"] for f in stored_document(valid.id).findings] == ["PEPPOL-EN16931-R008"]
    assert deliver(broken.id).status == "failed"
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == broken.id))
    assert "BR-CO-10" in delivery.error and len(mail_sink.messages()) == 1


# ------------------------------------------------------------------ glyphs
def test_a_private_use_character_fails_the_render_naming_it_and_nothing_is_sent(app, db_session, mail_sink,
                                                                                client_as, runner):
    case = Case("private use", (("Hosting", "1", "49.00", "19"), ("Support \ue000 plan", "1", "10.00", "19")),
                frozenset("S"))
    invoice = issue(case)
    with pytest.raises(MissingGlyph) as raised:
        get_or_render_document(invoice)
    db.session.rollback()
    message = str(raised.value)
    assert message.startswith("line 2 description contains U+E000 (a private-use character) at character 9, "
                              "which none of the invoice's fonts (Liberation Sans, DejaVu Sans, Noto Sans CJK JP)")
    assert deliver(invoice.id).status == "failed"
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice.id))
    assert "line 2 description contains U+E000" in delivery.error
    assert mail_sink.messages() == [] and stored_document(invoice.id) is None
    viewer = client_as("viewer")
    assert "line 2 description contains U+E000" in viewer.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    # A download says why there is no PDF, on the invoice page, instead of a server error.
    download = viewer.get(f"/invoices/{invoice.id}/pdf", follow_redirects=True)
    assert download.status_code == 200 and download.mimetype == "text/html"
    assert f"The PDF of invoice {invoice.number} cannot be made: line 2 description contains U+E000" in \
        download.get_data(as_text=True)
    result = runner.invoke(args=["invoices", "pdf", invoice.number, "--entity", "DE01", "-o", "-"])
    assert result.exit_code == 1
    assert f"Error: invoice {invoice.number}: line 2 description contains U+E000" in result.output


def test_a_missing_glyph_in_a_customer_name_is_named_too(app, db_session):
    invoice = issue(Case("unassigned", (("Hosting", "1", "49.00", "19"),), frozenset("S"),
                         customer=dict(name="Acme \U000e0080 GmbH")))
    with pytest.raises(MissingGlyph, match=r"^customer name contains U\+E0080 \(an unassigned code point\) at "
                                           r"character 6"):
        get_or_render_document(invoice)


def test_the_checked_fonts_are_the_stylesheets_and_cover_what_invoices_print(app):
    css = '@page { @x { font: 7pt "A B", \'C\', sans-serif; } }\nhtml { font: 9pt/1.45 "A B", serif; }'
    assert stylesheet_families(css) == ["A B", "C", "sans-serif", "serif"]
    with app.app_context():
        fonts = coverage()
        assert fonts.families[:3] == ["Liberation Sans", "DejaVu Sans", "Noto Sans CJK JP"]
        for text in ("Müller & Søn – 58,53 €", "₹ שלום Ελλάδα Москва", "株式会社 한국어 中文", "1\u202f234,50\u00a0€",
                     "soft\u00adhyphen zero\u200bwidth"):
            assert fonts.missing(text) is None, text
        assert fonts.missing("a\ue000b") == "\ue000"
        assert fonts.missing("bell\x07") == "\x07"


# ------------------------------------------------------------------ control characters already stored
def test_a_contract_line_with_a_control_character_fails_in_the_run_and_gets_no_number(app, db_session):
    entity = create_legal_entity(EntityInput(**GERMAN_SELLER), ACTOR)
    for n in (1, 2):
        customer = create_customer(entity, {"name": f"Kunde {n}", "email": f"k{n}@kunde.example",
                                            "address_line1": "Hauptstraße 1", "postcode": "80331", "city": "München",
                                            "country": "DE"}, ACTOR)
        create_contract(entity, {"reference": f"C-{n}", "customer_id": str(customer.id), "currency": "EUR",
                                 "frequency": "monthly", "start_date": "2026-11-01"},
                        [{"description": "Hosting", "quantity": "1", "unit_price": "49.00", "vat_rate": "19"}], ACTOR)
    db.session.commit()
    bad = db.session.scalar(select(Contract).where(Contract.reference == "C-1"))
    # Written past the field rules (which refuse it), as rows from before them may be.
    db.session.execute(ContractLine.__table__.update().where(ContractLine.contract_id == bad.id)
                       .values(description="Host\x07ing"))
    db.session.commit()
    result = start_billing_run(entity, AS_OF, "cli", ACTOR, enqueue=False)
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    item = db.session.scalar(select(BillingRunItem).where(BillingRunItem.contract_id == bad.id))
    assert item.status == "failed"
    assert item.reason == ("line 1: description contains the control character U+0007 at character 5, which no "
                           "invoice document can hold: correct it on the contract page, then run again")
    invoices = list(db.session.scalars(select(Invoice).where(Invoice.legal_entity_id == entity.id)))
    assert [i.contract.reference for i in invoices] == ["C-2"] and invoices[0].number


@pytest.mark.parametrize("args, message", [
    (["--address-line1", "Hauptstraße 1\x1b[2J", "--city", "Berlin"],
     "Error: address_line1: address line 1 contains the control character U+001B at character 14; it must be one "
     "line of plain text"),
    (["--name", "Demo\u2028GmbH"], "Error: name: name contains a line separator (U+2028) at character 5"),
])
def test_cli_entity_options_refuse_control_characters(app, runner, args, message):
    base = {"--code": "X9", "--name": "Demo GmbH", "--country": "DE", "--currency": "EUR"}
    for option, value in zip(args[::2], args[1::2]):
        base[option] = value
    result = runner.invoke(args=["entities", "add", *[part for pair in base.items() for part in pair]])
    assert result.exit_code == 1 and result.output.startswith(message), result.output


def test_a_line_description_with_a_line_break_is_refused_by_the_csv_import(app, db_session, tmp_path, runner):
    create_legal_entity(EntityInput(**GERMAN_SELLER), ACTOR)
    db.session.commit()
    path = tmp_path / "contracts.csv"
    path.write_text("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
                    "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date\n"
                    'DE01,C-1,Kunde,k@kunde.example,"Hosting\nand support",1,49.00,EUR,19,monthly,2026-11-01,,,,,\n')
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 1
    assert "line 2: description: description contains a line break (LF) at character 8" in result.output
    assert db.session.scalar(select(Contract.id)) is None
