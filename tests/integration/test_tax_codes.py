"""Tax codes: each line is billed and documented with its VAT category, rate and exemption reason (EN 16931 BG-23)."""
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.documents.einvoice import build_cii_xml
from app.documents.pdf import render_pdf
from app.extensions import db
from app.models import BillingRunItem, ContractLine, Invoice, TaxCode
from app.records import taxcodes
from app.records.entities import EntityInput, create_legal_entity, get_legal_entity_by_code
from tests.factories import make_contract, make_entity
from tests.integration.test_documents import pdf_text, xpath

AS_OF, START = date(2026, 11, 26), date(2026, 11, 1)
POLISH_VAT_ID = "PL5260250274"


def seller(**kwargs):
    values = dict(name="Arbill Demo GmbH", locale="de_DE", finance_email="finance@arbill.example")
    values.update(kwargs)
    return make_entity(**values)


def bill(entity) -> list[Invoice]:
    result = start_billing_run(entity, AS_OF, "cli", Actor.system("test"), enqueue=False)
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return list(db.session.scalars(select(Invoice).where(Invoice.legal_entity_id == entity.id)
                                   .order_by(Invoice.contract_id)))


def codes(entity) -> dict[str, TaxCode]:
    return {code.code: code for code in taxcodes.entity_codes(entity)}


# ------------------------------------------------------------------ the defaults
def test_a_new_entity_gets_its_countrys_rates_and_the_cross_border_codes(db_session):
    de = codes(seller())
    assert {(c.code, str(c.rate.normalize()), c.category) for c in de.values()} >= {
        ("DE_VAT_19", "19", "S"), ("DE_VAT_7", "7", "S"), ("DE_ZERO", "0", "Z"), ("DE_RC", "0", "AE"),
        ("EU_IC", "0", "K"), ("EXPORT", "0", "G"), ("EXEMPT", "0", "E"), ("DE_SMALL_BUSINESS", "0", "E"),
        ("NOT_SUBJECT", "0", "O")}
    assert de["DE_RC"].reason_code == "VATEX-EU-AE" and "Steuerschuldnerschaft" in de["DE_RC"].note
    assert "§ 19 UStG" in de["DE_SMALL_BUSINESS"].reason
    fr = codes(make_entity("FR01", country="FR"))
    assert {"FR_VAT_20", "FR_VAT_10", "FR_VAT_5_5", "FR_VAT_2_1", "FR_RC", "FR_FRANCHISE"} <= fr.keys()
    assert fr["FR_FRANCHISE"].reason_code == "VATEX-FR-FRANCHISE" and "293 B" in fr["FR_FRANCHISE"].reason
    ee = codes(make_entity("EE01", country="EE"))
    assert {("EE_VAT_24", Decimal(24)), ("EE_VAT_9", Decimal(9))} <= {(c.code, c.rate) for c in ee.values()}


# ------------------------------------------------------------------ the CLI
def test_cli_adds_and_lists_codes_with_the_interface_fields(app, runner):
    with app.app_context():
        seller()
        db.session.commit()
    result = runner.invoke(args=["taxcodes", "add", "--entity", "DE01", "--code", "PL_RC", "--rate", "0",
                                 "--category", "AE", "--reason", "Reverse charge", "--reason-code", "VATEX-EU-AE",
                                 "--note", "Odwrotne obciążenie / Reverse charge"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(args=["taxcodes", "list", "--entity", "DE01", "--json"]).output)
    [row] = [r for r in listed if r["code"] == "PL_RC"]
    assert row == {"code": "PL_RC", "rate": "0", "category": "AE", "reason": "Reverse charge",
                   "reason_code": "VATEX-EU-AE", "note": "Odwrotne obciążenie / Reverse charge", "retired": False}


@pytest.mark.parametrize("args, message", [
    (["--rate", "0", "--category", "AE"], "needs an exemption reason (BR-AE-10)"),
    (["--rate", "0", "--category", "S"], "needs a rate above 0"),
    (["--rate", "19", "--category", "K", "--reason", "x"], "has the rate 0, not 19"),
    (["--rate", "0", "--category", "X"], "is not an EN 16931 VAT category"),
    (["--rate", "0", "--category", "E", "--reason-code", "EXEMPT"], "is not a VATEX code"),
    (["--rate", "19", "--category", "S", "--reason", "why"], "takes no exemption reason (BR-S-10)"),
    (["--rate", "101", "--category", "S"], "outside 0-100"),
])
def test_cli_refuses_a_code_the_rules_forbid_and_adds_nothing(app, runner, args, message):
    with app.app_context():
        seller()
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(TaxCode))
    result = runner.invoke(args=["taxcodes", "add", "--entity", "DE01", "--code", "NEW", *args])
    assert result.exit_code == 1 and message in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TaxCode)) == before


def test_a_code_in_use_cannot_be_deleted_only_retired_and_a_retired_code_takes_no_new_line(app, runner):
    with app.app_context():
        entity = seller()
        make_contract(entity, "C-1", start=START, lines=[("Hosting", "1", "100", None, "DE_VAT_7")])
        db.session.commit()
    refused = runner.invoke(args=["taxcodes", "delete", "--entity", "DE01", "--code", "DE_VAT_7"])
    assert refused.exit_code == 1 and "used by 1 contract or invoice line(s)" in refused.output
    assert runner.invoke(args=["taxcodes", "delete", "--entity", "DE01", "--code", "EXPORT"]).exit_code == 0
    assert runner.invoke(args=["taxcodes", "retire", "--entity", "DE01", "--code", "DE_VAT_7"]).exit_code == 0
    with app.app_context():
        entity = get_legal_entity_by_code("DE01")
        assert {"DE_VAT_7", "DE_VAT_19"} <= codes(entity).keys() and "EXPORT" not in codes(entity)
        with pytest.raises(Exception, match="tax code DE_VAT_7 is retired in DE01"):
            taxcodes.TaxCodes(entity).line_code("DE_VAT_7", None)
        # a bare 7 % no longer finds the retired code, and the country's name for it is taken
        with pytest.raises(Exception, match="DE_VAT_7 is retired"):
            taxcodes.TaxCodes(entity).line_code(None, Decimal(7))


# ------------------------------------------------------------------ billing and the documents
def test_reverse_charge_to_an_eu_business_states_ae_its_reason_and_wording(db_session):
    entity = seller()
    contract = make_contract(entity, "C-1", start=START, customer="Kowalski Sp. z o.o.",
                             lines=[("Consulting", "10", "120.00", None, "DE_RC")])
    contract.customer.vat_id = POLISH_VAT_ID
    customer = contract.customer
    customer.address_line1, customer.postcode, customer.city, customer.country = (
        "ul. Marszałkowska 1", "00-514", "Warszawa", "PL")
    db.session.commit()
    [invoice] = bill(entity)
    assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (Decimal("1200"), 0, Decimal("1200"))
    [line] = invoice.lines
    assert (line.vat_category, line.tax_code, line.exemption_reason_code) == ("AE", "DE_RC", "VATEX-EU-AE")
    xml = build_cii_xml(invoice)
    assert xpath(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:CategoryCode") == ["AE"]
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == ["AE"]
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode") == [
        "VATEX-EU-AE"]
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason") == [
        "§ 13b UStG; Art. 196 MwStSystRL"]
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent") == [
        "0.00"]
    assert xpath(xml, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [POLISH_VAT_ID]
    text = pdf_text(render_pdf(invoice, xml=xml))
    assert "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge" in text
    assert "VAT 0 % reverse charge on" in text


def test_two_rates_and_an_exempt_line_give_one_breakdown_per_category_and_rate(db_session):
    entity = seller()
    make_contract(entity, "C-1", start=START, lines=[
        ("Software", "1", "100.00", None, "DE_VAT_19"), ("Books", "2", "10.00", None, "DE_VAT_7"),
        ("Medical check-up", "1", "50.00", None, "EXEMPT"), ("Support", "1", "20.00", "19")])
    db.session.commit()
    [invoice] = bill(entity)
    assert (invoice.net_amount, invoice.tax_amount) == (Decimal("190"), Decimal("24.20"))  # 22.80 + 1.40
    xml = build_cii_xml(invoice)
    breakdown = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert xpath(xml, f"{breakdown}/ram:CategoryCode") == ["E", "S", "S"]
    assert xpath(xml, f"{breakdown}/ram:RateApplicablePercent") == ["0.00", "7.00", "19.00"]
    assert xpath(xml, f"{breakdown}/ram:BasisAmount") == ["50.00", "20.00", "120.00"]
    assert xpath(xml, f"{breakdown}/ram:ExemptionReason") == ["Steuerbefreit nach § 4 UStG"]
    text = pdf_text(render_pdf(invoice, xml=xml))
    assert "VAT 0 % exempt on" in text and "Steuerfreie Leistung / Exempt from VAT" in text


def test_small_business_without_vat_id_states_e_and_the_19_ustg_wording(db_session):
    entity = seller(vat_id=None, tax_number="21/815/08150", registration_id="HRA 4711 B")
    make_contract(entity, "C-1", start=START, lines=[("Webdesign", "1", "800.00", None, "DE_SMALL_BUSINESS")])
    db.session.commit()
    [invoice] = bill(entity)
    assert invoice.tax_amount == 0
    xml = build_cii_xml(invoice)
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == ["E"]
    assert "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet." in pdf_text(render_pdf(invoice, xml=xml))


def test_a_seller_without_vat_id_needs_a_registration_id_to_identify_it(db_session):
    entity = seller(vat_id=None, tax_number="21/815/08150")
    make_contract(entity, "C-1", start=START, lines=[("Webdesign", "1", "800.00", None, "DE_SMALL_BUSINESS")])
    db.session.commit()
    assert bill(entity) == []
    failed = db.session.scalar(select(BillingRunItem).where(BillingRunItem.status == "failed"))
    assert "neither a VAT ID nor a registration ID" in failed.reason and "BR-CO-26" in failed.reason


def test_a_line_without_a_tax_code_is_billed_as_before(db_session):
    entity = seller()
    make_contract(entity, "C-1", start=START, lines=[("Old line", "1", "49.00", "19.45"), ("Zero", "1", "1", "0")])
    db.session.commit()
    [invoice] = bill(entity)
    assert [(line.vat_category, line.tax_code) for line in invoice.lines] == [("S", None), ("Z", None)]


def test_reverse_charge_to_a_customer_without_vat_id_fails_that_contract_and_bills_the_others(db_session):
    entity = seller()
    make_contract(entity, "C-1", start=START, customer="No VAT ID Ltd", lines=[("Consulting", "1", "100", None, "DE_RC")])
    make_contract(entity, "C-2", start=START, customer="Domestic GmbH")
    intra = make_contract(entity, "C-3", start=START, customer="Export Co", lines=[("Goods", "1", "10", None, "EU_IC")])
    intra.customer.vat_id = "FR40303265045"
    customer = intra.customer
    customer.address_line1, customer.postcode, customer.city, customer.country = "1 rue de Rivoli", "75001", "Paris", "FR"
    db.session.commit()
    invoices = bill(entity)
    assert [i.contract.reference for i in invoices] == ["C-2", "C-3"]
    failed = db.session.scalar(select(BillingRunItem).where(BillingRunItem.status == "failed"))
    assert "category AE (vat reverse charge) needs the customer's VAT ID" in failed.reason
    xml = build_cii_xml(invoices[1])
    assert xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == ["K"]
    # BR-IC-12: an intra-community supply names the country the goods go to
    assert xpath(xml, "//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID") == ["FR"]


def test_not_subject_to_vat_states_no_rate_and_no_vat_identifiers(db_session):
    entity = seller(registration_id="HRB 12345 B")
    contract = make_contract(entity, "C-1", start=START, lines=[("Service abroad", "1", "300", None, "NOT_SUBJECT")])
    contract.customer.vat_id = "CHE123456789"
    db.session.commit()
    [invoice] = bill(entity)
    xml = build_cii_xml(invoice)
    assert xpath(xml, "//ram:ApplicableTradeTax/ram:CategoryCode") == ["O", "O"]
    assert xpath(xml, "//ram:ApplicableTradeTax/ram:RateApplicablePercent") == []
    assert xpath(xml, "//ram:SpecifiedTaxRegistration[ram:ID/@schemeID='VA']") == []  # BR-O-02, BR-O-04
    assert xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID") == ["HRB 12345 B"]  # BR-CO-26


def test_not_subject_to_vat_needs_the_sellers_registration_id(db_session):
    entity = seller()
    make_contract(entity, "C-1", start=START, lines=[("Service abroad", "1", "300", None, "NOT_SUBJECT")])
    db.session.commit()
    assert bill(entity) == []
    failed = db.session.scalar(select(BillingRunItem).where(BillingRunItem.status == "failed"))
    assert "needs the legal entity's registration ID (BR-CO-26)" in failed.reason


def test_a_line_not_subject_to_vat_cannot_share_an_invoice_with_taxed_lines(db_session):
    entity = seller()
    make_contract(entity, "C-1", start=START, lines=[("Abroad", "1", "300", None, "NOT_SUBJECT"),
                                                     ("Local", "1", "10", None, "DE_VAT_19")])
    db.session.commit()
    assert bill(entity) == []
    failed = db.session.scalar(select(BillingRunItem).where(BillingRunItem.status == "failed"))
    assert "BR-O-11" in failed.reason


# ------------------------------------------------------------------ the contracts CSV
HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")


def import_rows(runner, tmp_path, rows, header=HEADER):
    path = tmp_path / "contracts.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return runner.invoke(args=["contracts", "import", str(path)])


def test_csv_lines_take_a_tax_code_or_a_rate_of_the_country(app, runner, tmp_path):
    with app.app_context():
        seller()
        db.session.commit()
    result = import_rows(runner, tmp_path, [
        "DE01,C-1,Acme GmbH,,Hosting,1,49.00,EUR,,monthly,2026-01-31,,,,,,DE_VAT_7",
        "DE01,C-1,Acme GmbH,,Support,1,10.00,EUR,19,monthly,2026-01-31,,,,,,",
        "DE01,C-2,Beta AG,,Licence,1,10.00,EUR,0,monthly,2026-01-31,,,,,,EXEMPT",
    ], header=HEADER + ",tax_code")
    assert result.exit_code == 0, result.output
    with app.app_context():
        lines = db.session.execute(select(ContractLine.description, ContractLine.vat_rate, TaxCode.code)
                                   .join(TaxCode, TaxCode.id == ContractLine.tax_code_id)
                                   .order_by(ContractLine.id)).all()
        assert [(d, r.normalize(), c) for d, r, c in lines] == [
            ("Hosting", Decimal(7), "DE_VAT_7"), ("Support", Decimal(19), "DE_VAT_19"), ("Licence", 0, "EXEMPT")]


def test_a_file_without_the_tax_code_column_still_imports(app, runner, tmp_path):
    with app.app_context():
        seller()
        db.session.commit()
    result = import_rows(runner, tmp_path, ["DE01,C-1,Acme GmbH,,Hosting,1,49.00,EUR,7,monthly,2026-01-31,,,,,"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        [code] = db.session.scalars(select(TaxCode.code).join(ContractLine, ContractLine.tax_code_id == TaxCode.id))
        assert code == "DE_VAT_7"


def test_bad_tax_codes_and_rates_name_their_rows_and_import_nothing(app, runner, tmp_path):
    with app.app_context():
        seller()
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(TaxCode))
    result = import_rows(runner, tmp_path, [
        "DE01,C-1,Acme GmbH,,Hosting,1,49.00,EUR,,monthly,2026-01-31,,,,,,NO_SUCH_CODE",
        "DE01,C-2,Acme GmbH,,Hosting,1,49.00,EUR,19.45,monthly,2026-01-31,,,,,,",
        "DE01,C-3,Acme GmbH,,Hosting,1,49.00,EUR,19,monthly,2026-01-31,,,,,,DE_VAT_7",
        "DE01,C-4,Acme GmbH,,Hosting,1,49.00,EUR,,monthly,2026-01-31,,,,,,",
    ], header=HEADER + ",tax_code")
    assert result.exit_code == 1
    assert "line 2: tax_code: unknown tax code 'NO_SUCH_CODE' in DE01" in result.output
    assert "line 3: tax_rate: 19.45 % is not a VAT rate of DE (19 %, 7 %)" in result.output
    assert "line 4: tax_code: tax code DE_VAT_7 has the rate 7 %, not 19 %" in result.output
    assert "line 5: tax_rate: value is required" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ContractLine)) == 0
        assert db.session.scalar(select(func.count()).select_from(TaxCode)) == before


def test_a_bare_rate_of_the_country_without_a_code_makes_one(app, runner, tmp_path):
    with app.app_context():
        entity = create_legal_entity(EntityInput(code="AT01", name="Demo GmbH", country="AT", currency="EUR"))
        taxcodes.delete_code(taxcodes.get_code(entity, "AT_VAT_13"), Actor.system("test"))
        db.session.commit()
    assert import_rows(runner, tmp_path, ["AT01,C-1,Acme,,Hosting,1,49.00,EUR,13,monthly,2026-01-31,,,,,"]).exit_code == 0
    with app.app_context():
        code = taxcodes.get_code(get_legal_entity_by_code("AT01"), "AT_VAT_13")
        assert (code.rate, code.category) == (Decimal(13), "S")


def test_a_credit_note_states_the_categories_of_what_it_credits(db_session):
    from app.records.credit_notes import CreditRequest, credit_invoice

    entity = seller()
    contract = make_contract(entity, "C-1", start=START, customer="Kowalski Sp. z o.o.", lines=[
        ("Consulting", "1", "100.00", None, "DE_RC"), ("Licence", "1", "100.00", None, "EXEMPT"),
        ("Hosting", "1", "100.00", None, "DE_VAT_19")])
    contract.customer.vat_id = POLISH_VAT_ID
    db.session.commit()
    [invoice] = bill(entity)
    note = credit_invoice(invoice, CreditRequest("Goodwill", amount=Decimal("60.00")), Actor.system("test"))
    db.session.commit()
    assert note.total_amount == Decimal("60.00")
    # shared over the three breakdowns, each keeping its category and reason
    assert sorted(line.vat_category for line in note.lines) == ["AE", "E", "S"]
    xml = build_cii_xml(note)
    breakdown = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert sorted(xpath(xml, f"{breakdown}/ram:CategoryCode")) == ["AE", "E", "S"]
    assert xpath(xml, f"{breakdown}/ram:ExemptionReasonCode") == ["VATEX-EU-AE"]
    rest = credit_invoice(invoice, CreditRequest("Cancelled"), Actor.system("test"))
    db.session.commit()
    assert sorted(line.vat_category for line in rest.lines) == ["AE", "E", "S"]
    assert invoice.status == "credited"


def test_csv_reverse_charge_needs_the_customers_vat_id(app, runner, tmp_path):
    with app.app_context():
        seller()
        db.session.commit()
    header = HEADER + ",tax_code,customer_vat_id,customer_address_line1,customer_postcode,customer_city,customer_country"
    refused = import_rows(runner, tmp_path, [
        "DE01,C-1,Kowalski,,Consulting,1,100,EUR,,monthly,2026-01-31,,,,,,DE_RC,,ul. Marszałkowska 1,00-514,Warszawa,PL",
    ], header=header)
    assert refused.exit_code == 1
    assert ("line 2: tax_code: tax code DE_RC (category AE, vat reverse charge) needs the customer's VAT ID: "
            "give it in customer_vat_id") in refused.output
    accepted = import_rows(runner, tmp_path, [
        f"DE01,C-1,Kowalski,,Consulting,1,100,EUR,,monthly,2026-01-31,,,,,,DE_RC,{POLISH_VAT_ID},"
        "ul. Marszałkowska 1,00-514,Warszawa,PL",
    ], header=header)
    assert accepted.exit_code == 0, accepted.output


def test_cli_retires_and_reactivates_a_code(app, runner):
    with app.app_context():
        seller()
        db.session.commit()
    assert runner.invoke(args=["taxcodes", "retire", "--entity", "DE01", "--code", "de_vat_7"]).output == (
        "Retired tax code DE_VAT_7 in DE01\n")
    again = runner.invoke(args=["taxcodes", "retire", "--entity", "DE01", "--code", "DE_VAT_7"])
    assert again.exit_code == 1 and "is retired already" in again.output
    assert runner.invoke(args=["taxcodes", "reactivate", "--entity", "DE01", "--code", "DE_VAT_7"]).exit_code == 0
    listed = json.loads(runner.invoke(args=["taxcodes", "list", "--entity", "DE01", "--json"]).output)
    assert not any(row["retired"] for row in listed)
    unknown = runner.invoke(args=["taxcodes", "delete", "--entity", "DE01", "--code", "NOPE"])
    assert unknown.exit_code == 1 and "unknown tax code 'NOPE' in DE01" in unknown.output
