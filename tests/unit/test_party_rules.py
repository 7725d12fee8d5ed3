"""Parties: the migration's splitting of free-text addresses, VAT IDs and tax numbers per country,
and what the billing run requires of seller and buyer before it bills."""
import importlib.util
from pathlib import Path

import pytest

from app.addresses import PostalAddress
from app.billing.requirements import Buyer, Seller, party_problems
from app.records.parties import (parse_country, parse_phone, parse_postcode, parse_registration_id,
                                 parse_tax_number, parse_vat_id)
from app.records.validation import FieldError

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0011_parties.py"


@pytest.fixture(scope="module")
def split_address():
    spec = importlib.util.spec_from_file_location("migration_0010", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.split_address


# ------------------------------------------------------------------ the data migration
@pytest.mark.parametrize("text, entity_country, expected", [
    # DE, with the country line in English, German or as a code
    ("Friedrichstraße 68\n10117 Berlin\nGermany", "FR", ("Friedrichstraße 68", None, "10117", "Berlin", None, "DE")),
    ("Friedrichstraße 68\n10117 Berlin\nDeutschland", "FR", ("Friedrichstraße 68", None, "10117", "Berlin", None, "DE")),
    ("Friedrichstraße 68\n10117 Berlin\nDE", "FR", ("Friedrichstraße 68", None, "10117", "Berlin", None, "DE")),
    # PL: the postcode 00-514 was lost; without a country line it is still Poland's
    ("ul. Marszałkowska 1\n00-514 Warszawa", "DE", ("ul. Marszałkowska 1", None, "00-514", "Warszawa", None, "PL")),
    ("ul. Marszałkowska 1\n00-514 Warszawa\nPolska", "DE", ("ul. Marszałkowska 1", None, "00-514", "Warszawa", None, "PL")),
    # JP: the postal mark, the Japanese order, and the Western one
    ("〒100-0001\n東京都千代田区千代田1-1", "DE", ("千代田1-1", None, "100-0001", "千代田区", "東京都", "JP")),
    ("〒1000001 東京都千代田区千代田1-1", "FR", ("千代田1-1", None, "100-0001", "千代田区", "東京都", "JP")),
    ("1-2-3 Marunouchi\nChiyoda-ku, Tokyo 100-0005\nJapan", "DE",
     ("1-2-3 Marunouchi", None, "100-0005", "Chiyoda-ku", "Tokyo", "JP")),
    ("1-2-3 Marunouchi\nTokyo 100-0005", "DE", ("1-2-3 Marunouchi", None, "100-0005", "Tokyo", None, "JP")),
    # US: the state is the subdivision; ZIP+4 alone says US
    ("1600 Amphitheatre Parkway\nMountain View, CA 94043\nUnited States", "DE",
     ("1600 Amphitheatre Parkway", None, "94043", "Mountain View", "CA", "US")),
    ("1600 Amphitheatre Parkway\nMountain View, CA 94043-1351", "DE",
     ("1600 Amphitheatre Parkway", None, "94043-1351", "Mountain View", "CA", "US")),
    # no country line: the entity's country only when the postcode has its form (or there is none)
    ("ACME SAS\n12 rue de la Paix\n75002 Paris", "FR", ("ACME SAS", "12 rue de la Paix", "75002", "Paris", None, "FR")),
    ("Hauptstraße 1\nBerlin", "DE", ("Hauptstraße 1", None, None, "Berlin", None, "DE")),
    ("Ring 1\n1010 Wien", "DE", ("Ring 1", None, "1010", "Wien", None, None)),
    # a tab, more than two street lines
    ("Vana-Lõuna 15\r\n10134 Tallinn\tEstonia", "DE", ("Vana-Lõuna 15", None, "10134", "Tallinn Estonia", None, "DE")),
    ("A\nB\nC\nD\n10115 Berlin", "DE", ("A", "B, C, D", "10115", "Berlin", None, "DE")),
    (None, "DE", (None, None, None, None, None, None)),
])
def test_the_migration_splits_free_text_addresses(split_address, text, entity_country, expected):
    assert tuple(split_address(text, entity_country)) == expected


# ------------------------------------------------------------------ field rules
@pytest.mark.parametrize("text, stored", [
    ("DE 136 695 976", "DE136695976"), ("fr40303265045", "FR40303265045"), ("EE102090374", "EE102090374"),
    ("PL526-025-02-74", "PL5260250274"), ("ATU13585627", "ATU13585627"), ("EL094259216", "EL094259216"),
    ("CHE-107.787.577 MWST", "CHE107787577MWST"), ("GB980780684", "GB980780684"), ("", None),
])
def test_vat_ids_valid_for_their_country_are_stored_compact(text, stored):
    assert parse_vat_id(text) == stored


@pytest.mark.parametrize("text, reason", [
    ("DE123456789", "is not a valid Germany VAT ID: its check digit does not match"),
    ("FR00303265045", "is not a valid France VAT ID"),
    ("DE12345", "is not a valid Germany VAT ID: it has the wrong number of characters"),
    ("123456789", "does not start with a country code"),
    ("XX123456789", "does not start with a country code"),
    ("T1234567890123", "is a Japanese registration number, not a VAT ID"),
    ("JPT5835678256246", "is a Japanese registration number, not a VAT ID"),
    ("DE136695976\x00", "contains a NUL character"),
])
def test_invalid_vat_ids_are_refused_with_the_reason(text, reason):
    with pytest.raises(FieldError, match=reason):
        parse_vat_id(text)


def test_tax_numbers_and_registration_ids_are_checked_per_country():
    assert parse_tax_number("181/815/08155", "DE") == "181/815/08155"
    with pytest.raises(FieldError, match="not a valid Germany tax number"):
        parse_tax_number("181/815", "DE")
    assert parse_tax_number("T5835678256246", "JP") == "T5835678256246"  # the Japanese registration number
    with pytest.raises(FieldError, match="not a valid Japan tax number: its check digit"):
        parse_tax_number("T5835678256247", "JP")
    assert parse_tax_number("12 345/6789", "AT") == "12 345/6789"
    with pytest.raises(FieldError, match="may hold only letters, digits"):
        parse_tax_number("12;34;56", "AT")
    assert parse_registration_id("732 829 320", "FR") == "732829320"  # SIREN
    assert parse_registration_id("73282932000074", "FR") == "73282932000074"  # SIRET
    with pytest.raises(FieldError, match="not a valid France registration ID"):
        parse_registration_id("732829321", "FR")
    assert parse_registration_id("5835678256246", "JP") == "5835678256246"
    assert parse_registration_id("HRB 123456 B", "DE") == "HRB 123456 B"


def test_countries_postcodes_and_phones():
    assert parse_country("de") == "DE"
    for bad in ("XX", "EU", "Deutschland"):
        with pytest.raises(FieldError, match="is not an ISO 3166 country code"):
            parse_country(bad)
    assert parse_postcode("〒100-0001") == "100-0001"
    assert parse_postcode("sw1a 1aa") == "SW1A 1AA"
    with pytest.raises(FieldError, match="control character U\\+001B"):
        parse_postcode("10117\x1b")
    with pytest.raises(FieldError, match="may hold only letters, digits, spaces and '-'"):
        parse_postcode("10117;")
    assert parse_phone("+49 (30) 123-4567") == "+49 (30) 123-4567"
    with pytest.raises(FieldError, match="phone"):
        parse_phone("call me")


# ------------------------------------------------------------------ what the billing run requires
BERLIN = PostalAddress(("Friedrichstraße 68",), "10117", "Berlin", None, "DE")
TALLINN = PostalAddress(("Vana-Lõuna 15",), "10134", "Tallinn", None, "EE")
NOWHERE = PostalAddress((), None, None, None, None)


def test_a_lawful_invoice_needs_seller_address_and_tax_id_and_buyer_address():
    seller = Seller(BERLIN, "DE136695976", None)
    assert party_problems(seller, Buyer("Bolt", TALLINN)) == []
    # a tax number states the tax; EN 16931 identifies the seller by VAT ID or registration (BR-CO-26)
    assert party_problems(Seller(BERLIN, None, "181/815/08155", registration_id="HRB 12345 B"),
                          Buyer("Bolt", TALLINN)) == []
    assert party_problems(Seller(BERLIN, None, "181/815/08155"), Buyer("Bolt", TALLINN)) == [
        "the legal entity has neither a VAT ID nor a registration ID, one of which identifies the seller on an "
        "e-invoice (BR-CO-26): fill it in under Settings > Legal entities"]
    assert party_problems(seller, Buyer("Bolt", NOWHERE)) == [
        "customer Bolt has no address: fill it in on the customer's page"]
    assert party_problems(seller, Buyer("Bolt", PostalAddress(("Vana-Lõuna 15",), None, "Tallinn", None, None))) == [
        "customer Bolt has an address without country: fill it in on the customer's page"]
    assert party_problems(Seller(NOWHERE, None, None), Buyer("Bolt", TALLINN)) == [
        "the legal entity's address lacks the street, city and country: fill it in under Settings > Legal entities",
        "the legal entity has neither a VAT ID nor a tax number, one of which every invoice states: fill it in "
        "under Settings > Legal entities"]


def test_a_buyer_reference_asks_for_what_xrechnung_requires():
    buyer = Buyer("Bundesamt", BERLIN, buyer_reference="04011000-12345-34", electronic_address="ap@bund.example")
    assert party_problems(Seller(BERLIN, "DE136695976", None), buyer) == [
        "customer Bundesamt has a buyer reference, so its invoices are XRechnung invoices, which need the legal "
        "entity's contact name, contact phone, contact e-mail and finance e-mail (electronic address): fill it in "
        "under Settings > Legal entities"]
    complete = Seller(BERLIN, "DE136695976", None, "finance@arbill.example", "AR", "+49 30 1234567", "ar@arbill.example")
    assert party_problems(complete, buyer) == []
    no_email = Buyer("Bundesamt", BERLIN, buyer_reference="04011000-12345-34")
    assert party_problems(complete, no_email) == [
        "customer Bundesamt has a buyer reference, so its invoices are XRechnung invoices, which need the "
        "customer's e-mail (electronic address): fill it in on the customer's page"]
