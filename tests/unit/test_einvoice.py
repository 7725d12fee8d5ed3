"""The pure helpers behind the invoice document: addresses, IBANs, amounts as the XML and PDF state them."""
from decimal import Decimal

from app.documents.einvoice import _Amounts, _plain
from app.addresses import is_country
from app.billing.vat import TaxTreatment
from app.documents.facts import group_iban, mask_iban
from app.documents.pdf import _money_formatter, _without_universal_pseudo_rules, percent


def test_country_codes_are_iso_3166():
    assert all(is_country(code) for code in ("DE", "FR", "JP", "EE", "US"))
    assert not any(is_country(code) for code in ("XX", "ZZ", "EU", "QO", "", None, "de"))


def test_ibans_are_grouped_and_masked():
    assert group_iban("de89 3704 0044 0532 0130 00") == "DE89 3704 0044 0532 0130 00"
    assert mask_iban("DE89370400440532013000") == "DE89 **** **** **** **30 00"
    assert mask_iban("EE382200221020145685") == "EE38 **** **** **** 5685"
    assert mask_iban(None) is None


def test_amounts_in_the_xml_have_the_currency_minor_unit():
    assert _Amounts("EUR").money(Decimal("58.5300")) == "58.53"
    assert _Amounts("EUR").money(Decimal("0")) == "0.00"
    assert _Amounts("JPY").money(Decimal("4791.0000")) == "4791"
    assert _Amounts("BHD").money(Decimal("1.2345")) == "1.235"
    assert _Amounts("EUR").price(Decimal("49.000000")) == "49.00"
    assert _Amounts("EUR").price(Decimal("0.123456")) == "0.123456"
    assert _Amounts("JPY").price(Decimal("1234.000000")) == "1234"
    assert _plain(Decimal("100.0000")) == "100" and _plain(Decimal("1.5000")) == "1.5"
    assert _plain(Decimal("19.0000"), 2) == "19.00" and _plain(Decimal("19.4500"), 2) == "19.45"
    # a line from before tax codes: standard rate, or zero rated at 0 %
    assert (TaxTreatment.implied(Decimal("19")).category, TaxTreatment.implied(Decimal("0.0000")).category) == ("S", "Z")


def test_money_on_the_pdf_is_formatted_for_the_entity_locale():
    eur = _money_formatter("EUR", "de_DE")
    assert eur(Decimal("58.5300")) == "58,53\xa0€"
    assert eur(Decimal("1234.5")) == "1.234,50\xa0€"
    assert eur(Decimal("0.123456"), exact=True) == "0,123456\xa0€"
    assert eur(Decimal("49.000000"), exact=True) == "49,00\xa0€"
    assert _money_formatter("EUR", "en_US")(Decimal("58.53")) == "€58.53"
    # ja_JP's full-width yen sign is not in the embedded font: the plain one is printed.
    assert _money_formatter("JPY", "ja_JP")(Decimal("4791")) == "¥4,791"
    assert percent(Decimal("19.4500"), "de_DE") == "19,45\xa0%"
    assert percent(Decimal("7.0000"), "de_DE") == "7\xa0%"
    assert percent(Decimal("10.0000"), "en_US") == "10\xa0%"


def test_the_lean_user_agent_stylesheet_drops_only_universal_pseudo_element_rules():
    from weasyprint.html import UA

    lean = _without_universal_pseudo_rules(UA)
    dropped = set(UA.splitlines()) - set(lean.splitlines())
    assert sorted(line.split("{")[0].strip() for line in dropped) == [
        "::footnote-call", "::footnote-marker", "::marker", "::note-call", "::note-callback", "::note-marker"]
    assert "br::before" in lean and "@page" in lean
