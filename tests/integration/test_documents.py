"""The invoice document: PDF/A-3b with the embedded EN 16931 (Factur-X) XML, stored once per invoice."""
import hashlib
import logging
import threading
from datetime import date
from decimal import Decimal
from io import BytesIO

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import func, select
from stdnum import iso11649

from app.audit import Actor
from app.billing.references import creditor_reference, format_creditor_reference
from app.billing.runs import execute_run, start_billing_run
from app.documents import service
from app.documents.einvoice import NS, build_cii_xml
from app.documents.facts import mask_iban
from app.documents.pdf import render_pdf
from app.documents.service import get_or_render_document
from app.extensions import db
from app.models import AgentDefinition, Customer, Invoice, InvoiceDocument
from tests.factories import make_contract, make_entity

AS_OF = date(2026, 11, 26)
START = date(2026, 11, 1)


# ------------------------------------------------------------------ helpers
def demo_entity(**kwargs):
    values = dict(name="Arbill Demo GmbH", vat_id="DE136695976", locale="de_DE", address_line1="Friedrichstraße 68",
                  postcode="10117", city="Berlin", finance_email="finance@arbill.example")
    values.update(kwargs)
    entity = make_entity(**values)
    entity.iban, entity.bic, entity.sepa_creditor_id = "DE89 3704 0044 0532 0130 00", "COBADEFFXXX", "DE98ZZZ09999999999"
    db.session.flush()
    return entity


def bill(entity, as_of=AS_OF) -> list[Invoice]:
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    assert result.started, result.message
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return list(db.session.scalars(select(Invoice).where(Invoice.legal_entity_id == entity.id)
                                   .order_by(Invoice.contract_id)))


def one_invoice(entity, lines=None, customer=None, currency="EUR") -> Invoice:
    make_contract(entity, "C-1", start=START, lines=lines, customer=customer, currency=currency)
    db.session.commit()
    [invoice] = bill(entity)
    return invoice


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def xpath(xml: bytes, path: str) -> list[str]:
    return [node.text for node in etree.fromstring(xml).xpath(path, namespaces=NS)]


def amount(xml: bytes, name: str) -> str:
    [value] = xpath(xml, f"//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:{name}")
    return value


# ------------------------------------------------------------------ the demo invoice
def test_demo_invoice_is_a_pdf_a3_with_a_valid_embedded_en16931_xml(db_session):
    entity = demo_entity()
    make_contract(entity, "C-1001", start=START, customer="Bolt")
    make_contract(entity, "C-1002", start=START, customer="Starship Technologies")
    db.session.commit()
    invoices = bill(entity)
    assert [i.total_amount for i in invoices] == [Decimal("58.53")] * 2
    invoice = invoices[0]

    document = get_or_render_document(invoice)
    db.session.commit()
    pdf = document.pdf
    assert pdf.startswith(b"%PDF")
    # One PDF, not factur-x's generate_from_binary output (the input's first bytes, then the result).
    assert pdf.count(b"%PDF-") == 1 and pdf.count(b"startxref") == 1
    assert len(pdf) < 30_000
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    assert xml == document.xml
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert facturx.get_level(etree.fromstring(xml), "factur-x") == "en16931"

    # The XML states the invoice as booked.
    assert xpath(xml, "//rsm:ExchangedDocument/ram:ID") == [invoice.number]
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert amount(xml, "GrandTotalAmount") == "58.53" == str(invoice.total_amount.quantize(Decimal("0.01")))
    assert Decimal(amount(xml, "LineTotalAmount")) == Decimal(amount(xml, "TaxBasisTotalAmount")) == invoice.net_amount
    assert Decimal(amount(xml, "TaxTotalAmount")) == invoice.tax_amount
    assert amount(xml, "DuePayableAmount") == "58.53"
    assert xpath(xml, "//ram:SellerTradeParty/ram:Name") == ["Arbill Demo GmbH"]
    assert xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ["DE136695976"]
    assert xpath(xml, "//ram:SellerTradeParty//ram:CountryID") == ["DE"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:Name") == ["Bolt"]
    assert xpath(xml, "//ram:BuyerTradeParty//ram:CountryID") == ["DE"]  # unknown: the entity's country
    assert xpath(xml, "//ram:BillingSpecifiedPeriod/*/udt:DateTimeString") == ["20261101", "20261130"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == ["20261210"]
    # The customer pays by transfer: SEPA credit transfer to the entity's account.
    assert xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["58"]
    assert xpath(xml, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == ["DE89370400440532013000"]
    assert xpath(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:RateApplicablePercent") == ["19.45"]
    # BT-83: the ISO 11649 creditor reference made of the invoice number, which a payer quotes
    reference = creditor_reference(invoice.number)
    assert reference == "RF" + reference[2:4] + invoice.number.replace("-", "") and iso11649.is_valid(reference)
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:PaymentReference") == [reference]

    text = pdf_text(pdf)
    for expected in (invoice.number, "58,53 €", "Bolt", "2026-11-01", "2026-11-30", "2026-12-10",
                     "Arbill Demo GmbH", "DE136695976", "DE89 3704 0044 0532 0130 00", "19,45 %"):
        assert expected in text, expected
    assert "Payment reference" in text and format_creditor_reference(reference) in text  # RF16 DE01 2026 0000 01
    assert "Starship Technologies" not in text

    reader = PdfReader(BytesIO(pdf))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert reader.metadata.title == f"Invoice {invoice.number}"
    assert reader.metadata.author == "Arbill Demo GmbH"


def test_the_pdf_carries_the_factur_x_xmp_and_the_associated_file(db_session):
    """What factur-x's embedding wrote: the fx: extension schema and values, /AF with AFRelationship Data."""
    invoice = one_invoice(demo_entity())
    pdf = render_pdf(invoice)
    assert facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)[0] == "factur-x.xml"
    reader = PdfReader(BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = etree.fromstring(root["/Metadata"].get_object().get_data().split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    fx = {"fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
          "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#", "pdf": "http://ns.adobe.com/pdf/1.3/"}
    assert [xmp.xpath(f"string(//fx:{name})", namespaces=fx) for name in
            ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")] == \
        ["INVOICE", "factur-x.xml", "1.0", "EN 16931"]
    assert xmp.xpath("string(//pdfaSchema:namespaceURI)", namespaces=fx) == fx["fx"]
    assert xmp.xpath("string(//pdfaSchema:prefix)", namespaces=fx) == "fx"
    assert xmp.xpath("string(//@pdf:Producer | //pdf:Producer)", namespaces=fx) == reader.metadata["/Producer"]
    [spec] = [ref.get_object() for ref in root["/AF"]]
    assert spec["/F"] == "factur-x.xml" and spec["/AFRelationship"] == "/Data"
    assert spec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert root["/Names"]["/EmbeddedFiles"]["/Names"][1].get_object() == spec


def test_the_pdf_has_a_file_identifier_over_its_content_and_every_stream_decodes(db_session):
    """PDF/A requires a file identifier; pdfa.py has each object serialized once for the file and its MD5."""
    pdf = render_pdf(one_invoice(demo_entity()))
    reader = PdfReader(BytesIO(pdf), strict=True)
    permanent, changing = reader.trailer["/ID"]
    assert permanent == changing and len(permanent) == 32  # WeasyPrint: the MD5 of the objects, in hex
    assert reader.xref_objStm and reader.trailer["/Size"] > 10
    for number in range(1, reader.trailer["/Size"]):
        stream = reader.get_object(number)
        if hasattr(stream, "get_data"):
            assert stream.get_data()  # inflates: the /Length and the /FlateDecode data agree
    assert "Net total" in pdf_text(pdf)


def test_two_rates_give_two_vat_breakdowns_that_add_up_to_the_invoice_tax(db_session):
    entity = demo_entity()
    invoice = one_invoice(entity, lines=[("Hosting", "1", "100.00", "19"), ("Handbook", "3", "12.35", "7"),
                                         ("Support hours", "1.5", "80.00", "19")])
    # 19 %: 100.00 + 120.00 = 220.00 → 41.80; 7 %: 37.05 → 2.59 (2.5935)
    assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (
        Decimal("257.05"), Decimal("44.39"), Decimal("301.44"))
    xml = build_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    breakdown = etree.fromstring(xml).xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax",
                                            namespaces=NS)
    rows = [(t.findtext("ram:RateApplicablePercent", namespaces=NS), t.findtext("ram:BasisAmount", namespaces=NS),
             t.findtext("ram:CalculatedAmount", namespaces=NS), t.findtext("ram:CategoryCode", namespaces=NS))
            for t in breakdown]
    assert rows == [("7.00", "37.05", "2.59", "S"), ("19.00", "220.00", "41.80", "S")]
    assert sum(Decimal(r[2]) for r in rows) == invoice.tax_amount
    assert sum(Decimal(r[1]) for r in rows) == invoice.net_amount
    assert xpath(xml, "//ram:BilledQuantity") == ["1", "3", "1.5"]

    text = pdf_text(render_pdf(invoice, xml))
    assert "VAT 7 % on 37,05 €" in text and "VAT 19 % on 220,00 €" in text
    assert "2,59 €" in text and "41,80 €" in text and "301,44 €" in text


def test_zero_rate_line_is_category_z(db_session):
    entity = demo_entity()
    invoice = one_invoice(entity, lines=[("Export service", "1", "10.00", "0"), ("Hosting", "1", "10.00", "19")])
    xml = build_cii_xml(invoice)
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == ["Z", "S"]
    assert amount(xml, "GrandTotalAmount") == "21.90"


def test_sepa_debit_customer_gets_the_mandate_and_a_pre_notification(db_session):
    entity = demo_entity()
    db.session.add(Customer(legal_entity_id=entity.id, name="Bolt", email="ap@bolt.example",
                            address_line1="Bolt Operations OÜ", address_line2="Vana-Lõuna 15", postcode="10134",
                            city="Tallinn", country="EE",
                            vat_id="EE102090374", payment_method="sepa_debit", iban="EE382200221020145685",
                            mandate_reference="MNDT-BOLT-0001", mandate_date=date(2026, 10, 1)))
    invoice = one_invoice(entity, customer="Bolt")
    document = get_or_render_document(invoice)
    xml = document.xml
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["59"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DirectDebitMandateID") == ["MNDT-BOLT-0001"]
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:CreditorReferenceID") == ["DE98ZZZ09999999999"]
    assert xpath(xml, "//ram:PayerPartyDebtorFinancialAccount/ram:IBANID") == ["EE382200221020145685"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ["EE102090374"]
    assert xpath(xml, "//ram:BuyerTradeParty//ram:CountryID") == ["EE"]
    assert xpath(xml, "//ram:BuyerTradeParty//ram:CityName") == ["Tallinn"]

    text = " ".join(pdf_text(document.pdf).split())
    masked = mask_iban("EE382200221020145685")
    assert masked == "EE38 **** **** **** 5685"
    assert (f"We will debit 58,53 € from your account {masked} on or after 2026-12-10 "
            f"under mandate MNDT-BOLT-0001.") in text
    assert "MNDT-BOLT-0001" in text and "DE98ZZZ09999999999" in text
    reference = creditor_reference(invoice.number)
    assert "Payment reference" in text and format_creditor_reference(reference) in text
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:PaymentReference") == [reference]
    assert "2200221020145685" not in text  # the customer's full IBAN is not printed
    assert "Vana-Lõuna 15" in text and "10134 Tallinn" in text and "EE102090374" in text


def test_jpy_amounts_have_no_decimals(db_session):
    entity = make_entity("JP01", name="Arbill KK", country="JP", currency="JPY", locale="ja_JP",
                         address_line1="1-2-3 Marunouchi", city="Chiyoda-ku", subdivision="Tokyo", postcode="100-0005",
                         vat_id=None, tax_number="T5835678256246", registration_id="5835678256246")
    invoice = one_invoice(entity, lines=[("Plan", "3", "1234", "10"), ("Seats", "2", "333", "8")], currency="JPY")
    # 10 %: 3702 → 370 (370.2); 8 %: 666 → 53 (53.28)
    assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (
        Decimal("4368"), Decimal("423"), Decimal("4791"))
    xml = build_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert xpath(xml, "//ram:InvoiceCurrencyCode") == ["JPY"]
    assert amount(xml, "GrandTotalAmount") == "4791"
    assert amount(xml, "TaxTotalAmount") == "423"
    assert xpath(xml, "//ram:LineTotalAmount") == ["3702", "666", "4368"]
    assert xpath(xml, "//ram:ChargeAmount") == ["1234", "333"]
    assert not any("." in v for v in xpath(xml, "//ram:CalculatedAmount | //ram:BasisAmount"))
    # No IBAN on the entity, a manual customer: payment means "not defined" (no account to state).
    assert xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["1"]
    text = pdf_text(render_pdf(invoice, xml))
    assert "¥4,791" in text  # ja_JP's full-width ￥ is not in the embedded font: the plain ¥ is printed


def test_characters_the_document_font_lacks_are_printed_from_the_fallback_font(db_session):
    """Liberation Sans sets the invoice; the rupee sign and Hebrew, which it lacks, come from DejaVu Sans."""
    entity = make_entity("IN01", name="Arbill India Pvt Ltd", country="IN", currency="INR", locale="en_IN",
                         address_line1="12 MG Road", postcode="560001", city="Bengaluru", vat_id=None,
                         tax_number="29AAGCB7383J1Z4", registration_id="U72200KA2010PTC052345")
    invoice = one_invoice(entity, lines=[("Plan", "1", "1000", "18")], customer="שלום Trading", currency="INR")
    pdf = render_pdf(invoice)
    text = pdf_text(pdf)
    assert "₹1,180.00" in text and "שלום" in text, text
    reader = PdfReader(BytesIO(pdf))
    fonts = {font.get_object()["/BaseFont"].split("+", 1)[1]
             for font in reader.pages[0]["/Resources"]["/Font"].values()}
    assert {"Liberation-Sans", "Liberation-Sans-Bold", "DejaVu-Sans"} <= fonts, fonts


def test_rendering_logs_no_weasyprint_warning(db_session, caplog, monkeypatch):
    """No missing glyph (.notdef), no CSS WeasyPrint ignores, no resource it could not fetch."""
    from app.documents import pdf as pdf_module

    monkeypatch.setattr(pdf_module, "_local", threading.local())  # parse the stylesheets again, here
    entity = demo_entity()
    invoice = one_invoice(entity, lines=[("Straße & Ölwechsel — ½ Tag", "0.5", "120.00", "19")])
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_pdf(invoice)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []


def test_html_that_is_not_well_formed_xml_still_renders(app):
    """The template's XHTML is parsed as XML; text XML refuses (a form feed) goes to the HTML parser."""
    from app.documents.pdf import _layout

    with app.app_context():
        document = _layout("<html><body><p>Form\x0cfeed &amp; <b>bold</b></p></body></html>")
    assert len(document.pages) == 1


# ------------------------------------------------------------------ storing
def test_the_document_is_rendered_once_and_stored(db_session, monkeypatch):
    entity = demo_entity()
    invoice = one_invoice(entity)
    first = get_or_render_document(invoice)
    db.session.commit()
    monkeypatch.setattr(service, "render_pdf", lambda *a, **k: pytest.fail("rendered a second time"))
    db.session.expire_all()
    second = get_or_render_document(db.session.get(Invoice, invoice.id))
    assert second.id == first.id and second.sha256 == first.sha256
    assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 1
    assert hashlib.sha256(second.pdf).hexdigest() == second.sha256


def test_a_racing_worker_that_stored_first_wins(db_session, monkeypatch):
    entity = demo_entity()
    invoice = one_invoice(entity)
    theirs = InvoiceDocument(invoice_id=invoice.id, pdf=b"%PDF-theirs", xml=b"<x/>", sha256="0" * 64)
    db.session.add(theirs)
    db.session.commit()
    # This worker looked before the other one committed: it renders, its insert loses.
    real_lookup, calls = service.stored_document, []

    def lookup(invoice_id):
        calls.append(invoice_id)
        return None if len(calls) == 1 else real_lookup(invoice_id)

    monkeypatch.setattr(service, "stored_document", lookup)
    document = get_or_render_document(invoice)
    assert document.id == theirs.id and document.pdf == b"%PDF-theirs"
    db.session.commit()  # the transaction is still usable
    assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 1


def test_a_draft_is_refused(db_session):
    entity = demo_entity()
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, "auto_post": False}
    db.session.commit()
    invoice = one_invoice(entity)
    assert invoice.status == "draft"
    with pytest.raises(ValueError, match="invoice is a draft: post it first"):
        get_or_render_document(invoice)
    with pytest.raises(ValueError, match="draft"):
        build_cii_xml(invoice)
    with pytest.raises(ValueError, match="draft"):
        render_pdf(invoice, b"<xml/>")
    assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 0


def test_markup_in_a_description_is_text_and_the_xml_stays_valid(db_session):
    entity = demo_entity()
    db.session.add(Customer(legal_entity_id=entity.id, name="<script>alert(1)</script> & Co",
                            address_line1="<i>Street</i> 1", postcode="10115", city="Berlin", country="DE"))
    invoice = one_invoice(entity, lines=[("<b>Premium</b> & support", "1", "49.00", "19.45")],
                          customer="<script>alert(1)</script> & Co")
    xml = build_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert xpath(xml, "//ram:SpecifiedTradeProduct/ram:Name") == ["<b>Premium</b> & support"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:Name") == ["<script>alert(1)</script> & Co"]
    text = pdf_text(render_pdf(invoice, xml))
    assert "<b>Premium</b> & support" in text
    assert "<script>alert(1)</script> & Co" in text and "<i>Street</i> 1" in text


def test_amounts_that_do_not_add_up_are_refused(db_session):
    entity = demo_entity()
    invoice = one_invoice(entity)
    invoice.lines[0].unit_price = Decimal("50.00")  # the lines no longer match the booked totals
    # (only in memory: the issued invoice is sealed, and the database refuses to change it)
    with db.session.no_autoflush, pytest.raises(ValueError, match="correct the invoice first"):
        build_cii_xml(invoice)


def test_an_entity_country_that_is_not_iso_3166_is_refused_with_what_to_fix(db_session):
    entity = demo_entity()
    invoice = one_invoice(entity)
    entity.country = "XX"  # passes the entity form's two-letter check; the e-invoice code list refuses it
    with pytest.raises(ValueError, match="legal entity DE01 has the country 'XX'.*correct it"):
        build_cii_xml(invoice)


# ------------------------------------------------------------------ the CLI
def test_cli_writes_the_pdf(db_session, runner, tmp_path):
    entity = demo_entity()
    invoice = one_invoice(entity)
    number = invoice.number
    target = tmp_path / "out.pdf"
    result = runner.invoke(args=["invoices", "pdf", number, "--entity", "DE01", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {target}" in result.output
    pdf = target.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert facturx.get_xml_from_pdf(pdf, check_xsd=True)[0] == "factur-x.xml"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 1  # stored, committed
    again = tmp_path / "again.pdf"
    assert runner.invoke(args=["invoices", "pdf", number, "--entity", "DE01", "-o", str(again)]).exit_code == 0
    assert again.read_bytes() == pdf


def test_cli_unknown_number_or_entity_is_one_actionable_line(db_session, runner, tmp_path):
    demo_entity()
    db.session.commit()
    target = tmp_path / "out.pdf"
    result = runner.invoke(args=["invoices", "pdf", "DE01-2026-999999", "--entity", "DE01", "-o", str(target)])
    assert result.exit_code == 1
    assert "no invoice numbered 'DE01-2026-999999' in legal entity DE01" in result.output
    assert "flask invoices list --entity DE01" in result.output
    assert not target.exists()
    result = runner.invoke(args=["invoices", "pdf", "X-1", "--entity", "NOPE", "-o", str(target)])
    assert result.exit_code == 1 and "unknown legal entity 'NOPE'" in result.output
