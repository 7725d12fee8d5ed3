"""The one reader of uploaded CSV and the one writer of CSV exports (app/spreadsheets.py), on plain bytes."""
from __future__ import annotations

import codecs
import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from app.spreadsheets import (PLAIN, Decimals, NotReadable, NumberError, SheetReader, csv_chunks, decoded_lines,
                              excel_format, header_problem, offers_excel, sniff_delimiter)

DATA = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"


def read(data: bytes, locale: str | None = None, expected=("customer", "unit_price")) -> tuple[SheetReader, list]:
    sheet = SheetReader(io.BytesIO(data), expected=expected, locale=locale)
    return sheet, list(sheet)


# ------------------------------------------------------------------ encoding
def test_a_german_excel_file_cp1252_semicolons_decimal_commas():
    sheet, rows = read("customer;unit_price\r\nMüller GmbH;49,00\r\n".encode("cp1252"), "de_DE")
    assert sheet.header == ["customer", "unit_price"] and rows == [(2, ["Müller GmbH", "49,00"])]
    assert sheet.decimals.read("49,00", 2, "unit_price") == "49.00"
    assert (sheet.found.encoding, sheet.found.delimiter, sheet.found.decimal) == ("Windows-1252", ";", ",")
    assert sheet.found.notes() == [
        "The file uses ';' between columns — read as such",
        "The file is Windows-1252 (cp1252) text, as Excel saves “CSV (delimited)” — read as such",
        "Decimals are written with a comma — read as such"]


def test_cp1252_characters_latin1_lacks_are_read():
    # – (0x96), € (0x80), „ “ (0x84 0x93): Windows-1252, not ISO-8859-1
    sheet, rows = read("customer;unit_price\n„Kasse – Filiale“ €;1\n".encode("cp1252"))
    assert rows == [(2, ["„Kasse – Filiale“ €", "1"])]


def test_utf8_with_and_without_bom():
    for data, encoding in (("customer,unit_price\nMüller,1\n".encode(), "UTF-8"),
                           (codecs.BOM_UTF8 + "customer,unit_price\nMüller,1\n".encode(), "UTF-8 with BOM")):
        sheet, rows = read(data)
        assert sheet.header == ["customer", "unit_price"] and rows == [(2, ["Müller", "1"])]
        assert sheet.found.encoding == encoding and sheet.found.notes() == []


def test_ascii_lines_then_a_cp1252_line_read_as_cp1252():
    data = b"customer;unit_price\nAcme;1\n" + "Müller;2\n".encode("cp1252")
    sheet, rows = read(data)
    assert rows[-1] == (3, ["Müller", "2"]) and sheet.found.encoding == "Windows-1252"


@pytest.mark.parametrize("data, message", [
    (b"customer\nM\x81ller\n", "line 2: the file is neither UTF-8 nor Windows-1252 (cp1252) text (byte 0x81 at byte 2"),
    ("customer\nMüller\n".encode() + "Größe\n".encode("cp1252"),
     "line 3: the file is not UTF-8 text (invalid start byte at byte 3 of the line), though line 2 is UTF-8"),
    ("customer\nGröße\n".encode("cp1252") + "Müller\n".encode(),
     "line 3: this line is UTF-8 text, but line 2 is Windows-1252 (cp1252): the file mixes two encodings"),
    (codecs.BOM_UTF8 + b"customer\nM\xfcller\n", "line 2: the file is not UTF-8 text (invalid start byte at byte 2 "
                                                  "of the line), though its byte order mark says UTF-8"),
    ("customer\nMüller\n".encode("utf-16"), "line 1: the file is UTF-16 text (Excel's “Unicode text”)"),
    (b"PK\x03\x04\x14\x00\x06\x00", "line 1: the file is an Excel workbook (.xlsx) or another zip archive, not CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "line 1: the file is an Excel 97-2003 workbook (.xls), not CSV"),
])
def test_files_neither_reads_are_refused_naming_the_line(data, message):
    with pytest.raises(NotReadable) as error:
        read(data)
    assert error.value.message.startswith(message), error.value.message
    assert "save it from the spreadsheet as “CSV UTF-8”" in error.value.message


def test_lines_are_decoded_one_at_a_time_and_cr_alone_ends_a_line():
    assert list(decoded_lines([b"a\rb\r\n", b"c\n"])) == ["a\r", "b\r\n", "c\n"]
    assert list(decoded_lines(["\ufeffa\n", "b\n"])) == ["a\n", "b\n"]


# ------------------------------------------------------------------ delimiter, quotes, CRLF
@pytest.mark.parametrize("header, delimiter", [
    ("customer,unit_price", ","), ("customer;unit_price", ";"), ("customer\tunit_price", "\t"),
    # a comma inside a quoted name does not win over the semicolons
    ('"customer, name";customer;unit_price', ";"),
    # the known names decide: one ';' that splits the known names beats two commas inside one
    ("customer;unit_price,net,gross", ";"), ("one", ","),
])
def test_the_delimiter_comes_from_the_header_line(header, delimiter):
    assert sniff_delimiter(header + "\r\n", ("customer", "unit_price")) == delimiter


def test_tab_delimited_quoted_fields_and_crlf():
    data = b'customer\tunit_price\r\n"Acme\tTools"\t"1,5"\r\n"Line\r\nbreak"\t2\r\n\r\nLast\t3'
    sheet, rows = read(data, "de_DE")
    assert sheet.found.delimiter == "\t" and "The file uses tab between columns — read as such" in sheet.found.notes()
    assert rows == [(2, ["Acme\tTools", "1,5"]), (3, ["Line\r\nbreak", "2"]), (5, []), (6, ["Last", "3"])]


def test_a_header_without_any_delimiter_says_so():
    sheet, _rows = read(b"customer|unit_price\nAcme|1\n")
    assert header_problem(sheet.header, ("customer", "unit_price")) == (
        "line 1: header: no ',', ';' or tab between the column names, so the file reads as one column "
        "('customer|unit_price'); expected a CSV file with the columns customer, unit_price")
    assert header_problem(["customer", "x"], ("customer", "unit_price")) == "line 1: header: missing column(s) unit_price"
    assert header_problem(["customer", "unit_price"], ("customer", "unit_price")) is None


# ------------------------------------------------------------------ decimals
@pytest.mark.parametrize("locale, cells, expected", [
    ("de_DE", ["1.234,56", "30,00", "1.000", "-0,5", "1.234.567"], ["1234.56", "30.00", "1000", "-0.5", "1234567"]),
    ("en_US", ["1,234.56", "30.00", "1,000", "-0.5", "1,234,567"], ["1234.56", "30.00", "1000", "-0.5", "1234567"]),
    # a de_DE entity's file with dot decimals (as files were written before): the first number settles it
    ("de_DE", ["49.00", "1.000", "19.45"], ["49.00", "1.000", "19.45"]),
    # an en_US entity's German file
    ("en_US", ["49,00", "1.234,56", "1,5"], ["49.00", "1234.56", "1.5"]),
    (None, ["1.5", "12", " 1 234,50 "], ["1.5", "12", None]),
])
def test_decimal_separator_by_locale_checked_per_file(locale, cells, expected):
    decimals = Decimals(locale)
    for line, (text, want) in enumerate(zip(cells, expected), start=2):
        if want is None:
            with pytest.raises(NumberError):
                decimals.read(text, line, "unit_price")
        else:
            assert decimals.read(text, line, "unit_price") == want
            assert Decimal(want)  # what parse_decimal gets is a plain number


def test_a_number_written_the_other_way_names_both_lines():
    decimals = Decimals("de_DE")
    assert decimals.read("30,00", 2, "unit_price") == "30.00"
    with pytest.raises(NumberError) as error:
        decimals.read("49.50", 4, "unit_price")
    assert str(error.value) == ("'49.50' has a decimal point, but this file writes decimals with a comma "
                                "(line 2, unit_price '30,00'): write every number one way")
    ambiguous = Decimals("de_DE")
    assert ambiguous.read("1.000", 2, "quantity") == "1000"  # read by the locale, which settles the file
    with pytest.raises(NumberError, match=r"line 2, quantity '1.000'"):
        ambiguous.read("0.5", 3, "quantity")


@pytest.mark.parametrize("text", ["49,00,0", "1e5", "NaN", "-", "1.2.3", "12,34.5", "1.23,4.5", "49€", "abc"])
def test_what_is_no_number_says_so(text):
    with pytest.raises(NumberError) as error:
        Decimals("de_DE").read(text, 4, "unit_price")
    assert str(error.value) == f"{text!r} is not a number"


def test_a_file_against_its_locale_is_noted():
    decimals = Decimals("de_DE")
    decimals.read("49.00", 3, "unit_price")
    assert decimals.found.notes() == ["Decimals are written with a point (unit_price '49.00' on line 3), unlike the "
                                      "locale de_DE's comma — read as the file writes them"]


def test_the_sample_files_read_as_excel_wrote_them():
    sheet, rows = read((DATA / "contracts-excel-de.csv").read_bytes(), "de_DE", expected=("entity", "customer"))
    assert sheet.found.encoding == "Windows-1252" and sheet.found.delimiter == ";"
    assert [cells[2] for _line, cells in rows] == ["Müller GmbH", "Müller GmbH", "Bäckerei Größe KG"]
    assert rows[0][1][4] == 'Wartung "Süd"; Halle 3' and rows[2][1][4] == "Lizenz für Kasse – Filiale"
    assert [sheet.decimals.read(cells[6], line, "unit_price") for line, cells in rows] == ["1234.56", "30.00", "49.00"]


# ------------------------------------------------------------------ writing
def test_plain_csv_neutralises_formulas_and_keeps_numbers_and_iso_dates():
    body = b"".join(csv_chunks(("Customer", "Total", "Due"), [
        ("=HYPERLINK(\"http://x\")", Decimal("-12.50"), date(2026, 1, 31)),
        ("@SUM(A1)", Decimal("1234.5600"), None), ("+1", Decimal("0"), date(2026, 2, 1)),
        ("-2", Decimal("3"), None), ("\tTab", Decimal("1E+2"), None), (True, 7, None)]))
    assert not body.startswith(codecs.BOM_UTF8)
    assert list(csv.reader(io.StringIO(body.decode()))) == [
        ["Customer", "Total", "Due"], ["'=HYPERLINK(\"http://x\")", "-12.50", "2026-01-31"],
        ["'@SUM(A1)", "1234.5600", ""], ["'+1", "0", "2026-02-01"], ["'-2", "3", ""], ["'\tTab", "100", ""],
        ["yes", "7", ""]]


def test_excel_friendly_csv_for_decimal_comma_locales():
    fmt = excel_format("de_DE")
    assert (fmt.delimiter, fmt.decimal, fmt.bom) == (";", ",", True) and offers_excel("de_DE")
    assert not offers_excel("en_US") and excel_format("en_US").delimiter == ","
    body = b"".join(csv_chunks(("Kunde", "Summe", "Datum"), [("Müller; GmbH", Decimal("1234.56"), date(2026, 1, 2)),
                                                            ("=1+1", Decimal("-0.50"), None)], fmt))
    assert body.startswith(codecs.BOM_UTF8)
    text = body.decode("utf-8-sig")
    assert text == 'Kunde;Summe;Datum\r\n"Müller; GmbH";1234,56;2026-01-02\r\n\'=1+1;-0,50;\r\n'
    # and it reads back with the reader, as de_DE
    sheet = SheetReader(io.BytesIO(body), expected=("kunde", "summe"), locale="de_DE")
    rows = list(sheet)
    assert sheet.found.delimiter == ";" and sheet.decimals.read(rows[0][1][1], 2, "summe") == "1234.56"


def test_exports_come_in_chunks_with_one_bom():
    chunks = list(csv_chunks(("A",), ([str(n)] for n in range(1200)), excel_format("de_DE"), rows_per_chunk=500))
    assert len(chunks) == 3 and chunks[0].startswith(codecs.BOM_UTF8)
    assert not any(chunk.startswith(codecs.BOM_UTF8) for chunk in chunks[1:])
    assert b"".join(chunks).decode("utf-8-sig").count("\r\n") == 1201
    assert b"".join(csv_chunks(("A",), [], PLAIN)) == b"A\r\n"
