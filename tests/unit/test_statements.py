"""Bank statements read from real files: camt.053 (.02/.08, checked against the ISO 20022 XSDs), MT940 as
German banks send it, and CSV; every bad file gets an error a credit controller can act on."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.banking import samples
from app.banking.statements import AMOUNT_MAX, StatementError, read_statement
from tests.bank_answer_files import camt054, pain002, valid

IBAN = "DE89370400440532013000"
PAYER = "DE02120300000000202051"
RF = "RF18539007547034"

CREDIT = dict(amount="120.50", direction="credit", booking_date="2026-12-01", value_date="2026-12-02",
              bank_reference="BANK-1", end_to_end_id="E2E-1", creditor_reference=RF,
              remittance="Invoice DE01-2026-000042 for November", counterparty_name="Müller & Söhne GmbH",
              counterparty_iban=PAYER, counterparty_bic="BYLADEM1001")
RETURN = dict(amount="58.31", direction="debit", booking_date="2026-12-03", bank_reference="BANK-2",
              end_to_end_id="ARBDE01-7", return_reason="AM04", counterparty_name="Kunde GmbH",
              counterparty_iban="DE02500105170137075030")
REVERSAL = dict(amount="10.00", direction="debit", booking_date="2026-12-03", reversal=True,
                remittance="Storno Gutschrift")
BATCH = dict(direction="credit", booking_date="2026-12-04", bank_reference="BATCH-9", transactions=[
    dict(amount="30.00", end_to_end_id="A-1", remittance="DE01-2026-000001", counterparty_name="Alpha"),
    dict(amount="45.25", end_to_end_id="A-2", remittance="DE01-2026-000002", counterparty_name="Beta"),
    dict(amount="30.00", remittance="no reference", counterparty_name="Gamma")])
PENDING = dict(amount="99.00", direction="credit", booking_date="2026-12-04", status="PDNG")

FIELDS = ("booking_date", "value_date", "amount", "direction", "reversal", "bank_reference", "end_to_end_id",
          "creditor_reference", "remittance", "counterparty_name", "counterparty_iban", "counterparty_bic",
          "return_reason")


def _as_read(entry: dict) -> dict:
    """What reading should give for a sample entry dict."""
    day = entry.get("value_date")
    return {"booking_date": date.fromisoformat(entry["booking_date"]),
            "value_date": date.fromisoformat(day) if day else None, "amount": Decimal(entry["amount"]),
            "direction": entry["direction"], "reversal": bool(entry.get("reversal")),
            **{key: entry.get(key) for key in FIELDS[5:]}, "remittance": entry.get("remittance", "")}


def _fields(entry) -> dict:
    return {key: getattr(entry, key) for key in FIELDS}


@pytest.mark.parametrize("version", ["02", "08"])
def test_camt053_validates_against_its_xsd_and_reads_back(version):
    xml = samples.camt053([CREDIT, RETURN, REVERSAL, PENDING], version=version, account_iban=IBAN,
                          opening_balance="1000.00", statement_id="STMT-42")
    assert valid(xml, f"camt.053.001.{version}")
    statement = read_statement(xml)
    assert (statement.format, statement.version, statement.statement_id) == ("camt053", f"camt.053.001.{version}",
                                                                             "STMT-42")
    assert (statement.account_iban, statement.account_currency, statement.sequence) == (IBAN, "EUR", "1")
    assert statement.opening_balance == Decimal("1000.00")
    assert statement.closing_balance == Decimal("1052.19")     # the pending 99.00 has not moved money
    assert statement.skipped == 1
    assert [_fields(e) for e in statement.entries] == [_as_read(CREDIT), _as_read(RETURN), _as_read(REVERSAL)]
    assert statement.entries[0].bank_transaction_code == "PMNT/RCDT/ESCT"
    assert {e.currency for e in statement.entries} == {"EUR"}
    # the return names our customer (the debtor of the original collection), not us
    assert statement.entries[1].counterparty_iban == RETURN["counterparty_iban"]


@pytest.mark.parametrize("version", ["02", "08"])
def test_camt053_batch_booking_gives_one_entry_per_transaction(version):
    xml = samples.camt053([BATCH], version=version, account_iban=IBAN)
    assert valid(xml, f"camt.053.001.{version}")
    entries = read_statement(xml).entries
    assert [(e.amount, e.end_to_end_id, e.counterparty_name, e.remittance) for e in entries] == [
        (Decimal("30.00"), "A-1", "Alpha", "DE01-2026-000001"), (Decimal("45.25"), "A-2", "Beta", "DE01-2026-000002"),
        (Decimal("30.00"), None, "Gamma", "no reference")]
    assert {e.bank_reference for e in entries} == {"BATCH-9"}
    assert len({e.fingerprint for e in entries}) == 3


def test_batch_whose_transactions_do_not_add_up_is_refused():
    xml = samples.camt053([BATCH], account_iban=IBAN).replace(b'<Ntry><Amt Ccy="EUR">105.25</Amt>',
                                                              b'<Ntry><Amt Ccy="EUR">100.00</Amt>')
    with pytest.raises(StatementError, match="add up to 105.25 but the entry is 100.00"):
        read_statement(xml)


def test_fingerprints_are_stable_across_reads_and_distinct_within_a_file():
    twin = dict(amount="5.00", direction="credit", booking_date="2026-12-05", remittance="same")
    entries = [CREDIT, RETURN, REVERSAL, BATCH, twin, dict(twin)]
    for data in (samples.camt053(entries, account_iban=IBAN), samples.mt940([e for e in entries if "amount" in e]),
                 samples.csv_statement([e for e in entries if "amount" in e])):
        first, again = read_statement(data), read_statement(data)
        prints = [e.fingerprint for e in first.entries]
        assert prints == [e.fingerprint for e in again.entries]
        assert len(set(prints)) == len(prints)
        assert all(0 < len(p) <= 64 for p in prints)
    # the same booking in an overlapping statement keeps its fingerprint
    one = read_statement(samples.camt053([CREDIT], account_iban=IBAN, statement_id="A")).entries[0]
    other = read_statement(samples.camt053([RETURN, CREDIT], account_iban=IBAN, statement_id="B")).entries[1]
    assert one.fingerprint == other.fingerprint == f"{IBAN}|BANK-1"


def test_several_statements_of_one_account_are_read_together():
    xml = samples.camt053([CREDIT], account_iban=IBAN, opening_balance="10", more_statements=[
        dict(entries=[RETURN], statement_id="STMT-2", opening_balance="130.50", sequence=2)])
    assert valid(xml, "camt.053.001.08")
    statement = read_statement(xml)
    assert [e.bank_reference for e in statement.entries] == ["BANK-1", "BANK-2"]
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("10"), Decimal("72.19"))
    assert (statement.from_date, statement.to_date) == (date(2026, 12, 1), date(2026, 12, 3))


def test_statements_for_two_accounts_are_refused():
    xml = samples.camt053([CREDIT], account_iban=IBAN, more_statements=[
        dict(entries=[RETURN], account_iban=PAYER, statement_id="OTHER")])
    with pytest.raises(StatementError, match=f"2 accounts .*{PAYER}"):
        read_statement(xml)
    text = samples.mt940([CREDIT], more_statements=[dict(entries=[RETURN], account=PAYER)])
    with pytest.raises(StatementError, match="2 accounts"):
        read_statement(text)


@pytest.mark.parametrize("data, message", [
    (samples.camt053([CREDIT])[:-40], "not complete XML: it breaks off or is damaged at line"),
    (pain002("ARBDE0100000120261204", [dict(end_to_end_id="E", status="ACSC")]),
     r"a payment status report \(pain.002.001.11\), not a bank statement"),
    (camt054(IBAN, []), r"a debit/credit notification \(camt.054.001.08\), not a bank statement"),
    (samples.camt053([CREDIT]).replace(b"camt.053.001.08", b"camt.053.001.04"),
     "version camt.053.001.04; Arbill reads camt.053.001.02 and camt.053.001.08"),
    (b'<?xml version="1.0"?><invoice/>', "an XML file that is not an ISO 20022 message"),
    (samples.camt053([CREDIT]).replace(b">120.50<", b">12,3x<"), "amount '12,3x' is not a positive number"),
    (samples.camt053([CREDIT]).replace(b'Ccy="EUR">120.50', b'Ccy="EUX">120.50'), "'EUX' is not an ISO 4217"),
    (samples.camt053([CREDIT]).replace(b"<Dt>2026-12-01</Dt></BookgDt>", b"<Dt>2026-12-41</Dt></BookgDt>"),
     "'2026-12-41' is not a date"),
    (b"", "the file is empty"),
    (b"%PDF-1.7 binary", "unknown format: expected camt.053 XML, MT940 text or CSV with columns booking_date"),
])
def test_bad_files_are_refused_with_a_clear_reason(data, message):
    with pytest.raises(StatementError, match=message):
        read_statement(data)


def test_entities_in_xml_are_not_resolved():
    xml = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr>'
           b'<MsgId>&x;</MsgId></GrpHdr></BkToCstmrStmt></Document>')
    with pytest.raises(StatementError) as error:
        read_statement(xml)
    assert "root:" not in str(error.value)


def test_size_and_entry_limits():
    xml = samples.camt053([CREDIT, RETURN, REVERSAL], account_iban=IBAN)
    with pytest.raises(StatementError, match="statements up to"):
        read_statement(xml, max_bytes=len(xml) - 1)
    with pytest.raises(StatementError, match="up to 2 are read at once"):
        read_statement(xml, max_entries=2)
    with pytest.raises(StatementError, match="unknown format 'ofx'"):
        read_statement(xml, "ofx")


# ------------------------------------------------------------------ MT940
def test_mt940_with_structured_86_reads_back():
    text = samples.mt940([CREDIT, RETURN, REVERSAL], account_iban=IBAN, opening_balance="1000")
    assert b"\r\n" in text and b"\r\n-\r\n" in text
    assert all(len(line) <= 65 for line in text.decode().split("\r\n"))
    statement = read_statement(text)
    assert (statement.format, statement.statement_id, statement.sequence) == ("mt940", "STARTUMSE", "00001/001")
    assert (statement.account_iban, statement.account_currency) == (IBAN, "EUR")
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("1000.00"), Decimal("1052.19"))
    credit, returned, reversal = statement.entries
    # MT940 has no structured reference field: the payer writes the RF reference into SVWZ
    assert _fields(credit) == {**_as_read(CREDIT), "remittance": f"{RF} {CREDIT['remittance']}"}
    assert credit.bank_transaction_code == "166"
    assert _fields(returned) == {**_as_read(RETURN), "value_date": date(2026, 12, 3)}
    assert (reversal.direction, reversal.reversal, reversal.bank_reference) == ("debit", True, None)


def test_mt940_as_a_bank_writes_it_by_hand():
    """A Sparkasse-style file: SWIFT envelope, BLZ/account, NONREF, RF reference in SVWZ spread over ?2x
    lines, a return with RTRN+ and a numeric ?34, CRLF, several :20: blocks of the same account."""
    text = ("{1:F01COLSDE33AXXX0000000000}{2:O9400000000000COLSDE33AXXX00000000000000000000N}{4:\r\n"
            ":20:STARTUMSE\r\n:25:37040044/0532013000\r\n:28C:00042/001\r\n:60F:C261130EUR500,00\r\n"
            ":61:2612011201CR250,00N166NONREF\r\n"
            ":86:166?00GUTSCHR. UEBERWEISUNG?10931?20EREF+NOTPROVIDED?21SVWZ+RF18 5\r\n"
            "390 0754 7034 Rg?22 2026-000042?30COBADEFFXXX?31DE02120300000000202051\r\n"
            "?32ACME Handels GmbH\r\n"
            ":62F:C261201EUR750,00\r\n-}\r\n"
            "{1:F01COLSDE33AXXX0000000000}{4:\r\n"
            ":20:STARTUMSE\r\n:25:37040044/0532013000\r\n:28C:00043/001\r\n:60F:C261201EUR750,00\r\n"
            ":61:2612021202D49,90N109NONREF//0000012345\r\n"
            ":86:109?00RUECKLASTSCHRIFT?10931?20EREF+ARBDE01-9?21SVWZ+RTRN+MD06 Ruecklast\r\n"
            "?22schrift?3150010517?32Max Mustermann?34901\r\n"
            ":62F:C261202EUR700,10\r\n-}\r\n").encode("cp1252")
    statement = read_statement(text)
    assert statement.account_iban == IBAN                      # 37040044/0532013000 as its IBAN
    first, second = statement.entries
    assert (first.amount, first.direction, first.end_to_end_id, first.creditor_reference) == (
        Decimal("250.00"), "credit", None, RF)
    assert (first.counterparty_name, first.counterparty_iban, first.counterparty_bic) == (
        "ACME Handels GmbH", PAYER, "COBADEFFXXX")
    assert (second.direction, second.return_reason, second.end_to_end_id, second.bank_reference) == (
        "debit", "MD06", "ARBDE01-9", "0000012345")
    assert second.counterparty_iban is None                    # ?31 holds an account number, not an IBAN
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("500.00"), Decimal("700.10"))
    assert second.fingerprint == f"{IBAN}|0000012345"
    assert first.fingerprint != second.fingerprint and len(first.fingerprint) == 32


@pytest.mark.parametrize("line, message", [
    (":61:2612011201C12,3xNTRFNONREF", "line 5: amount '12,3x' is not a number"),
    (":61:2613011301C12,30NTRFNONREF", "line 5: '261301' is not a date"),
    (":61:hello", "line 5: booking line ':61:hello' cannot be read"),
])
def test_mt940_bad_lines_are_named(line, message):
    text = f":20:X\n:25:{IBAN}\n:28C:1\n:60F:C261130EUR0,00\n{line}\n:86:x\n:62F:C261201EUR0,00\n-\n"
    with pytest.raises(StatementError, match=message):
        read_statement(text.encode())


def test_mt940_balance_with_unknown_currency_is_refused():
    text = f":20:X\n:25:{IBAN}\n:60F:C261130EUX0,00\n:62F:C261201EUX0,00\n-\n"
    with pytest.raises(StatementError, match="line 3: currency 'EUX'"):
        read_statement(text.encode(), "mt940")


# ------------------------------------------------------------------ CSV
def test_csv_with_semicolons_and_decimal_commas():
    data = ("\ufeffbooking_date;value_date;amount;currency;counterparty_name;counterparty_iban;remittance;"
            "reference;end_to_end_id\r\n"
            f"2026-12-01;2026-12-02;1.234,56;EUR;Müller & Söhne GmbH;{PAYER};Rechnung {RF};B-1;E2E-1\r\n"
            "2026-12-03;;-58,31;eur;Kunde;;Ruecklastschrift;;NOTPROVIDED\r\n").encode()
    statement = read_statement(data)
    assert (statement.format, statement.account_iban, len(statement.statement_id)) == ("csv", None, 16)
    credit, debit = statement.entries
    assert (credit.amount, credit.direction, credit.creditor_reference, credit.bank_reference) == (
        Decimal("1234.56"), "credit", RF, "B-1")
    assert (debit.amount, debit.direction, debit.currency, debit.end_to_end_id) == (
        Decimal("58.31"), "debit", "EUR", None)


def test_csv_written_by_samples_reads_back():
    for kwargs in (dict(), dict(delimiter=";", decimal_comma=True)):
        statement = read_statement(samples.csv_statement([CREDIT, RETURN], **kwargs))
        expected = [{**_as_read(entry), "counterparty_bic": None, "return_reason": None, "creditor_reference": None}
                    for entry in (CREDIT, RETURN)]
        assert [_fields(e) for e in statement.entries] == expected


def test_csv_bad_rows_are_named_by_line():
    data = b"booking_date,amount,currency\n2026-12-01,12.3x,EUR\n2026-02-30,1,EUR\n2026-12-01,1,XYZ\n"
    with pytest.raises(StatementError) as error:
        read_statement(data)
    assert error.value.problems == ["line 2: amount '12.3x' is not a number",
                                    "line 3: booking_date '2026-02-30' is not a date (use YYYY-MM-DD)",
                                    "line 4: currency 'XYZ' is not an ISO 4217 currency"]


def test_the_amount_cap_is_what_the_columns_hold():
    from app.models import BankEntry, BankStatement
    from app.records.validation import column_maximum

    assert AMOUNT_MAX == column_maximum(BankEntry.amount) == column_maximum(BankStatement.opening_balance)


def test_amounts_larger_than_the_columns_are_refused_naming_them():
    """A numeric field overflow on PostgreSQL before: the file is refused as it is read."""
    csv_text = b"booking_date,amount,currency\n2026-12-01,12.00,EUR\n2026-12-02,-100000000000000,EUR\n"
    with pytest.raises(StatementError, match=r"line 3: amount -100000000000000 is larger than Arbill holds "
                                             r"\(99999999999999\.9999\)"):
        read_statement(csv_text)
    with pytest.raises(StatementError, match="the entry of 2026-12-01 for 100000000000000.00 EUR is larger than"):
        read_statement(samples.camt053([{**CREDIT, "amount": "100000000000000.00"}]))
