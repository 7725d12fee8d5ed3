"""Spreadsheets as they come and as they go: CSV files read the way Excel and banks save them, and CSV
exports a spreadsheet opens correctly. The one place for both; pure (no Flask, no SQLAlchemy).

Reading (`SheetReader`): an upload's bytes (or a file's, or text) become rows, one at a time, with a
description of what was found (`Found`), so memory stays flat however long the file is:

- **Encoding**: UTF-8 with or without a byte order mark, else Windows-1252 (cp1252, what Excel saves as
  "CSV (delimited)" on a German or English Windows) — nothing else is guessed. Lines are decoded one at a
  time: a file is UTF-8 until a line is not, then Windows-1252 if every line before it was ASCII (both
  read ASCII alike). A line that neither decodes, a Windows-1252 line after UTF-8 ones (or the other way
  round), UTF-16 text and Excel workbooks are refused with the line and what to do.
- **Delimiter**: `,` `;` or tab, from the header line — the one that splits it into the most known column
  names (then the most columns). Quoted fields, CRLF, CR and LF line ends as the csv module reads them.
- **Decimals** (`Decimals`): the decimal separator of the entity's locale (de_DE: `1.234,56`), checked
  per file: the first number that says which separator it uses (`49,00`, `1,234.56`, `0.5`) settles it
  for the file; a number that could be either (`1.234`) is read by the locale and settles it too. A
  later number written the other way is an error naming both lines; so a de_DE entity's file with dot
  decimals (`49.00`, as files were written before) still imports.

Writing (`csv_chunks`): typed cells — text through `app.text.spreadsheet_text` (formula injection),
Decimal as a plain number with the format's decimal separator, dates ISO — encoded in chunks for a
streamed response. `PLAIN` is `,` / `.` / UTF-8; `excel_format(locale)` is what Excel in that locale opens
by double-click: UTF-8 with a BOM, and for a decimal-comma locale `;` and `,`.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import IO, Iterable, Iterator, Sequence

from app.errors import NotReadable, NumberError
from app.text import spreadsheet_text

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}
SAVE_AS = "save it from the spreadsheet as “CSV UTF-8” or “CSV (delimited)”"


# ------------------------------------------------------------------ what was found
@dataclass
class Found:
    """What the reader found out about a file; complete once every row has been read."""

    encoding: str = "UTF-8"  # "UTF-8", "UTF-8 with BOM" or "Windows-1252"
    delimiter: str = ","
    decimal: str | None = None  # "," or "." once a number settled it
    decimal_note: str | None = None

    def notes(self) -> list[str]:
        """What a person should know was read differently from a plain UTF-8, comma-separated, dot-decimal
        file, as sentences without the full stop: "The file uses ';' between columns — read as such"."""
        notes = []
        if self.delimiter != ",":
            notes.append(f"The file uses {DELIMITER_NAMES[self.delimiter]} between columns — read as such")
        if self.encoding == "Windows-1252":
            notes.append("The file is Windows-1252 (cp1252) text, as Excel saves “CSV (delimited)” — read as such")
        if self.decimal_note:
            notes.append(self.decimal_note)
        return notes


# ------------------------------------------------------------------ decoding
_CR_LINE = re.compile(rb"(?<=\r)(?!\n)")  # after a CR that no LF follows
_WORKBOOKS = ((b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
              (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"))


def decoded_lines(stream: Iterable[bytes] | Iterable[str], found: Found | None = None) -> Iterator[str]:
    """The stream's lines as text, one at a time, decoded as the module docstring says (`found.encoding`
    tells which). Text chunks pass through (a BOM dropped). A lone CR ends a line too, as a text file read
    with newline="" does. Raises NotReadable naming the line."""
    found = found if found is not None else Found()
    number = 0
    utf8_line = cp1252_line = 0  # the first line that showed the file is UTF-8 / Windows-1252
    for chunk in stream:
        if isinstance(chunk, str):
            number += 1
            yield chunk.removeprefix("\ufeff") if number == 1 else chunk
            continue
        for raw in _CR_LINE.split(chunk) if b"\r" in chunk[:-2] else (chunk,):
            if not raw:
                continue
            number += 1
            if number == 1:
                _refuse_other_formats(raw)
                if raw.startswith(codecs.BOM_UTF8):
                    raw, found.encoding, utf8_line = raw[len(codecs.BOM_UTF8):], "UTF-8 with BOM", 1
            if raw.isascii():
                yield raw.decode("ascii")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                where = f"{error.reason} at byte {error.start + 1} of the line"
                if utf8_line:
                    first = "its byte order mark says UTF-8" if utf8_line == 1 and found.encoding.endswith("BOM") \
                        else f"line {utf8_line} is UTF-8"
                    raise NotReadable(number, f"line {number}: the file is not UTF-8 text ({where}), though {first}: "
                                              f"it mixes two encodings; {SAVE_AS}") from None
                try:
                    text = raw.decode("cp1252")
                except UnicodeDecodeError as error2:
                    byte = raw[error2.start]
                    raise NotReadable(number, f"line {number}: the file is neither UTF-8 nor Windows-1252 (cp1252) "
                                              f"text (byte 0x{byte:02X} at byte {error2.start + 1} of the line); "
                                              f"{SAVE_AS}") from None
                cp1252_line = cp1252_line or number
                found.encoding = "Windows-1252"
                yield text
                continue
            if cp1252_line:
                raise NotReadable(number, f"line {number}: this line is UTF-8 text, but line {cp1252_line} is "
                                          f"Windows-1252 (cp1252): the file mixes two encodings; {SAVE_AS}")
            utf8_line = utf8_line or number
            yield text


def _refuse_other_formats(first: bytes) -> None:
    for magic, what in _WORKBOOKS:
        if first.startswith(magic):
            raise NotReadable(1, f"line 1: the file is {what}, not CSV text; {SAVE_AS}")
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise NotReadable(1, "line 1: the file is UTF-16 text (Excel's “Unicode text”), not UTF-8 or Windows-1252; "
                             + SAVE_AS)


# ------------------------------------------------------------------ delimiter
def _names(line: str, delimiter: str) -> list[str]:
    try:
        return [cell.strip().lower() for cell in next(csv.reader([line], delimiter=delimiter), [])]
    except csv.Error:
        return []


def sniff_delimiter(header_line: str, expected: Iterable[str] = ()) -> str:
    """`,` `;` or tab: the one that splits the header line into the most `expected` names, then into the
    most columns; `,` when none splits it."""
    expected = set(expected)
    scores = []
    for rank, delimiter in enumerate(DELIMITERS):
        names = _names(header_line, delimiter)
        scores.append((sum(1 for name in names if name in expected), len(names), -rank, delimiter))
    return max(scores)[3]


def header_problem(header: Sequence[str], required: Sequence[str], what: str = "column") -> str | None:
    """The message for a header that lacks `required` names, saying why when the reason is plain:
    a single column (no delimiter found), else which are missing. None when nothing is missing."""
    missing = [name for name in required if name not in header]
    if not missing:
        return None
    if len(header) <= 1 and len(required) > 1:
        return (f"line 1: header: no ',', ';' or tab between the column names, so the file reads as one "
                f"{what} ({_short(header[0] if header else '')!r}); expected a CSV file with the {what}s "
                f"{', '.join(required)}")
    return f"line 1: header: missing {what}(s) {', '.join(missing)}"


def _short(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[:length] + "…"


# ------------------------------------------------------------------ decimals
_GROUP_LEAD = r"[1-9]\d{0,2}"
_SIGN = re.compile(r"^[+-]")


def locale_decimal(locale: str | None) -> str:
    """The decimal separator of `locale` ("," for de_DE, "." for en_US and when unknown)."""
    if not locale:
        return "."
    try:
        from babel.numbers import get_decimal_symbol

        return "," if get_decimal_symbol(locale) == "," else "."
    except Exception:  # noqa: BLE001 - an unknown locale reads dot decimals, as before locales were known
        return "."


def classify_number(text: str) -> tuple[str | None, str | None]:
    """(decimal separator the text proves — "," "." or None when it proves none, grouping character or
    None) for a number written with optional sign and `.`/`,`; raises NumberError when it is none."""
    body = _SIGN.sub("", text, count=1)
    if re.fullmatch(r"\d+", body):
        return None, None
    commas, dots = body.count(","), body.count(".")
    if commas and dots:
        decimal = "," if body.rfind(",") > body.rfind(".") else "."
        group = "." if decimal == "," else ","
        if re.fullmatch(rf"{_GROUP_LEAD}(?:{re.escape(group)}\d{{3}})+{re.escape(decimal)}\d+", body):
            return decimal, group
        raise NumberError(f"{text!r} is not a number")
    separator = "," if commas else "."
    count = commas or dots
    if count == 1:
        whole, fraction = body.split(separator)
        if not (whole or fraction) or not re.fullmatch(r"\d*", whole) or not re.fullmatch(r"\d*", fraction):
            raise NumberError(f"{text!r} is not a number")
        if re.fullmatch(_GROUP_LEAD, whole) and len(fraction) == 3:
            return None, separator  # 1.234: a thousands group or three decimals — the file decides
        return separator, None
    if re.fullmatch(rf"{_GROUP_LEAD}(?:{re.escape(separator)}\d{{3}})+", body):
        return ("." if separator == "," else ","), separator  # 1,234,567: grouped, so decimals are the other
    raise NumberError(f"{text!r} is not a number")


@dataclass
class Decimals:
    """The decimal separator of one file: the locale's until a number settles it (see the module docstring).
    `read(text, line, column)` gives the number as dot-decimal text for the field rules."""

    locale: str | None = None
    found: Found = field(default_factory=Found)
    decimal: str = field(init=False)
    settled_by: tuple[int, str, str] | None = field(init=False, default=None)

    def __post_init__(self):
        self.decimal = locale_decimal(self.locale)

    def use_locale(self, locale: str | None) -> None:
        """Take `locale` (the legal entity's, once the first row names it) while no number has settled the file."""
        if self.settled_by is None:
            self.locale, self.decimal = locale, locale_decimal(locale)

    def read(self, text: str, line: int, column: str) -> str:
        written = text.strip().replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
        if not written:
            return written
        decimal, group = classify_number(written)
        if decimal is None and group is not None:  # 1.234: read by the file's separator, else the locale's
            self._settle(self.decimal, line, column, text)
            decimal = self.decimal if group == self.decimal else None
            group = None if decimal else group
        elif decimal is not None:
            self._settle(decimal, line, column, text)
        if group:
            written = written.replace(group, "")
        return written.replace(",", ".") if decimal == "," else written

    def _settle(self, decimal: str, line: int, column: str, text: str) -> None:
        if self.settled_by is None:
            self.settled_by, self.decimal = (line, column, text), decimal
            self.found.decimal = decimal
            locale_says = locale_decimal(self.locale)
            if decimal != locale_says:
                self.found.decimal_note = (
                    f"Decimals are written with a {_separator_name(decimal)} ({column} {text!r} on line {line}), "
                    f"unlike the locale {self.locale}'s {_separator_name(locale_says)} — read as the file writes them")
            elif decimal == ",":
                self.found.decimal_note = "Decimals are written with a comma — read as such"
            return
        if decimal != self.decimal:
            first_line, first_column, first_text = self.settled_by
            raise NumberError(
                f"{text!r} has a decimal {_separator_name(decimal)}, but this file writes decimals with a "
                f"{_separator_name(self.decimal)} (line {first_line}, {first_column} {first_text!r}): write every "
                f"number one way")


def _separator_name(separator: str) -> str:
    return "comma" if separator == "," else "point"


# ------------------------------------------------------------------ rows
class SheetReader:
    """An uploaded CSV read row by row. `header` (names stripped, lower case), then iterate for
    (line, cells): the line a row starts on and its cells; `found` says what was detected, `decimals`
    reads number cells. NotReadable and csv.Error propagate (from the constructor for the header line)."""

    def __init__(self, stream: IO[bytes] | IO[str] | Iterable[bytes] | Iterable[str], *,
                 expected: Iterable[str] = (), locale: str | None = None):
        self.found = Found()
        self.decimals = Decimals(locale, self.found)
        lines = decoded_lines(stream, self.found)
        first = next(lines, "")
        self.found.delimiter = sniff_delimiter(first, expected)
        self._reader = csv.reader(chain([first], lines) if first else lines, delimiter=self.found.delimiter)
        self.header = [name.strip().lower() for name in next(self._reader, [])]

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        ended = self._reader.line_num
        for cells in self._reader:
            line, ended = ended + 1, self._reader.line_num  # a row starts on the line after the last one ended
            yield line, cells


# ------------------------------------------------------------------ writing
@dataclass(frozen=True)
class CsvFormat:
    delimiter: str = ","
    decimal: str = "."
    bom: bool = False
    suffix: str = ""  # added to the file name: "-excel"


PLAIN = CsvFormat()


def excel_format(locale: str | None) -> CsvFormat:
    """What Excel opens by double-click in `locale`: UTF-8 with a BOM (else it reads Windows-1252), and in a
    decimal-comma locale `;` between columns and a decimal comma (its list separator and number format)."""
    return CsvFormat(";", ",", True, "-excel") if locale_decimal(locale) == "," else CsvFormat(",", ".", True, "-excel")


def offers_excel(locale: str | None) -> bool:
    """Whether the pages offer the Excel-friendly variant next to the plain CSV: for decimal-comma locales."""
    return locale_decimal(locale) == ","


def cell(value, fmt: CsvFormat = PLAIN) -> str:
    """One exported cell: text made safe for spreadsheets, a Decimal as a plain number, a date ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.replace(".", fmt.decimal) if fmt.decimal != "." else text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return spreadsheet_text(str(value))


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence], fmt: CsvFormat = PLAIN, *,
               rows_per_chunk: int = 500) -> Iterator[bytes]:
    """The CSV file in UTF-8 chunks of `rows_per_chunk` rows (a BOM first if the format has one), for a
    streamed response: never the whole file in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=fmt.delimiter, lineterminator="\r\n")
    writer.writerow([cell(name, fmt) for name in header])
    prefix = codecs.BOM_UTF8 if fmt.bom else b""
    count = 0
    for row in rows:
        writer.writerow([cell(value, fmt) for value in row])
        count += 1
        if count % rows_per_chunk == 0:
            yield prefix + buffer.getvalue().encode("utf-8")
            prefix = b""
            buffer.seek(0)
            buffer.truncate()
    yield prefix + buffer.getvalue().encode("utf-8")
