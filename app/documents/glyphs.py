"""Every character an invoice prints has a glyph in the invoice's fonts, or the invoice is not rendered.

Pango draws a character that no font has as an empty box (.notdef): the description is unreadable,
and a PDF/A with a .notdef glyph is not PDF/A. Before WeasyPrint lays an invoice out, the text of its
HTML is checked against the character maps (fontTools) of the font files fontconfig resolves for the
quoted families of the stylesheet (Liberation Sans, DejaVu Sans, Noto Sans CJK JP; regular and bold):
a character none of them has raises `MissingGlyph`, naming the character and where it is printed
("line 2 description"). Cheap: each font's map is read once per process, and only when a character
not yet seen needs it (a Latin invoice never reads the 45,000-character CJK map); a character once
found is remembered, so a render costs one set difference over its HTML.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator

from app.errors import DocumentError, MissingGlyph
from app.models import Invoice

STYLES = ("regular", "bold")  # the weights invoice.css uses (no italics)
# Not drawn as glyphs: line breaks and tabs the layout turns into space, and characters HarfBuzz never
# draws (format characters: soft hyphen, zero-width joiners, bidi marks; variation selectors).
_LAYOUT_WHITESPACE = frozenset("\t\n\r")
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_DECLARATION = re.compile(r"font(?:-family)?\s*:\s*([^;}]*)")
_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'")
_GENERIC = re.compile(r"(?<![\w-])(sans-serif|serif|monospace)(?![\w-])")


# ------------------------------------------------------------------ the fonts
def stylesheet_families(css: str) -> list[str]:
    """The font families of a stylesheet's `font`/`font-family` declarations, in order, each once."""
    families: list[str] = []
    for value in _DECLARATION.findall(css):
        names = [a or b for a, b in _QUOTED.findall(value)] + _GENERIC.findall(_QUOTED.sub("", value))
        families.extend(name for name in names if name not in families)
    return families


def _fontconfig():
    from cffi import FFI

    ffi = FFI()
    ffi.cdef("""
        typedef struct _FcPattern FcPattern;
        typedef struct _FcConfig FcConfig;
        typedef int FcBool;
        typedef enum { FcResultMatch, FcResultNoMatch, FcResultTypeMismatch, FcResultNoId,
                       FcResultOutOfMemory } FcResult;
        typedef enum { FcMatchPattern, FcMatchFont, FcMatchScan } FcMatchKind;
        FcPattern *FcNameParse(const unsigned char *name);
        FcBool FcConfigSubstitute(FcConfig *config, FcPattern *p, FcMatchKind kind);
        void FcDefaultSubstitute(FcPattern *pattern);
        FcPattern *FcFontMatch(FcConfig *config, FcPattern *p, FcResult *result);
        FcResult FcPatternGetString(const FcPattern *p, const char *object, int n, unsigned char **s);
        FcResult FcPatternGetInteger(const FcPattern *p, const char *object, int n, int *i);
        void FcPatternDestroy(FcPattern *p);
    """)
    for name in ("libfontconfig.so.1", "fontconfig", "libfontconfig-1.dll"):
        try:
            return ffi, ffi.dlopen(name)
        except OSError:
            continue
    raise DocumentError("fontconfig (libfontconfig1) is not installed: the invoice fonts cannot be found")


def resolve_font_files(families: Iterable[str]) -> list[tuple[str, str, int]]:
    """(family, file, face index) that fontconfig picks for each family in each weight, as Pango would."""
    ffi, fc = _fontconfig()
    found: list[tuple[str, str, int]] = []
    for family in families:
        for style in STYLES:
            pattern = fc.FcNameParse(f"{family}:weight={style}".encode())
            fc.FcConfigSubstitute(ffi.NULL, pattern, fc.FcMatchPattern)
            fc.FcDefaultSubstitute(pattern)
            result = ffi.new("FcResult *")
            match = fc.FcFontMatch(ffi.NULL, pattern, result)
            fc.FcPatternDestroy(pattern)
            if match == ffi.NULL:
                continue
            path, index = ffi.new("unsigned char **"), ffi.new("int *")
            if fc.FcPatternGetString(match, b"file", 0, path) == fc.FcResultMatch:
                if fc.FcPatternGetInteger(match, b"index", 0, index) != fc.FcResultMatch:
                    index[0] = 0
                entry = (family, ffi.string(path[0]).decode(), index[0])
                if all(entry[1:] != other[1:] for other in found):
                    found.append(entry)
            fc.FcPatternDestroy(match)
    return found


class Coverage:
    """Which characters the invoice's fonts can print; font maps are read when first needed."""

    def __init__(self, fonts: list[tuple[str, str, int]]) -> None:
        self.fonts = fonts
        self.families = list(dict.fromkeys(family for family, _path, _index in fonts))
        self._maps: list[frozenset[int] | None] = [None] * len(fonts)
        self._printable: set[str] = set(_LAYOUT_WHITESPACE)
        self._lock = threading.Lock()

    def _map(self, number: int) -> frozenset[int]:
        codepoints = self._maps[number]
        if codepoints is None:
            from fontTools.ttLib import TTFont

            _family, path, index = self.fonts[number]
            font = TTFont(path, fontNumber=index, lazy=True) if path.lower().endswith((".ttc", ".otc")) \
                else TTFont(path, lazy=True)
            codepoints = self._maps[number] = frozenset(font.getBestCmap() or ())
            font.close()
        return codepoints

    def printable(self, character: str) -> bool:
        if character in self._printable:
            return True
        category = unicodedata.category(character)
        ok = category == "Cf" or bool(_VARIATION_SELECTORS.match(character))
        if not ok and category != "Cc":
            with self._lock:
                ok = any(ord(character) in self._map(n) for n in range(len(self.fonts)))
        if ok:
            self._printable.add(character)
        return ok

    def missing(self, text: str) -> str | None:
        """The first character of `text` no font prints, or None."""
        unknown = set(text) - self._printable
        if not unknown:
            return None
        bad = {character for character in unknown if not self.printable(character)}
        return next((character for character in text if character in bad), None) if bad else None


_coverage: Coverage | None = None
_coverage_lock = threading.Lock()


def coverage() -> Coverage:
    """The invoice stylesheet's font coverage, built once per process."""
    global _coverage
    if _coverage is None:
        with _coverage_lock:
            if _coverage is None:
                from flask import current_app

                from app.documents.pdf import STYLESHEET

                env = current_app.jinja_env
                css, _filename, _uptodate = env.loader.get_source(env, STYLESHEET)
                _coverage = Coverage(resolve_font_files(stylesheet_families(css)))
    return _coverage


# ------------------------------------------------------------------ the invoice's text
def printed_fields(invoice: Invoice) -> Iterator[tuple[str, str | None]]:
    """(where, text) of what the invoice prints from its records, as a person would name the place."""
    entity, customer = invoice.legal_entity, invoice.customer
    yield "invoice number", invoice.number
    yield "legal entity name", entity.name
    yield from _address_fields("legal entity address", entity.postal_address)
    for label, value in (("VAT ID", entity.vat_id), ("tax number", entity.tax_number),
                         ("registration ID", entity.registration_id), ("finance e-mail", entity.finance_email),
                         ("contact name", entity.contact_name), ("contact phone", entity.contact_phone),
                         ("contact e-mail", entity.contact_email)):
        yield f"legal entity {label}", value
    yield "customer name", customer.name
    yield from _address_fields("customer address", customer.postal_address)
    yield "customer VAT ID", customer.vat_id
    yield "customer buyer reference", customer.buyer_reference
    yield "customer mandate reference", customer.mandate_reference
    if invoice.contract is not None:
        yield "contract reference", invoice.contract.reference
        yield "contract purchase order", invoice.contract.po_reference
    yield "credit reason", invoice.credit_reason
    for line in invoice.lines:
        yield f"line {line.position} description", line.description
        yield f"line {line.position} tax code wording", line.tax_note
        yield f"line {line.position} exemption reason", line.exemption_reason


def _address_fields(where: str, address) -> Iterator[tuple[str, str | None]]:
    for number, line in enumerate(address.lines, start=1):
        yield f"{where} line {number}", line
    yield f"{where} postcode", address.postcode
    yield f"{where} city", address.city
    yield f"{where} region", address.subdivision


def describe(character: str) -> str:
    """U+E000 (a private-use character), U+1F600 GRINNING FACE, U+0378 (an unassigned code point)."""
    code = f"U+{ord(character):04X}"
    category = unicodedata.category(character)
    if category == "Co":
        return f"{code} (a private-use character)"
    if category == "Cn":
        return f"{code} (an unassigned code point)"
    if category == "Cc":
        return f"{code} (a control character)"
    name = unicodedata.name(character, "")
    return f"{code} {name}" if name else code


def check_printable(invoice: Invoice, html: str) -> None:
    """Raise MissingGlyph when the invoice's HTML has a character none of the invoice's fonts has."""
    fonts = coverage()
    character = fonts.missing(html)
    if character is None:
        return
    where, position = "the invoice's printed labels or amounts", None
    for field, text in printed_fields(invoice):
        if text and character in text:
            where, position = field, text.index(character) + 1
            break
    at = f" at character {position}" if position else ""
    raise MissingGlyph(
        f"{where} contains {describe(character)}{at}, which none of the invoice's fonts "
        f"({', '.join(fonts.families)}) can print: the PDF would show an empty box, so it was not made. "
        "Correct the text (an issued invoice: by a credit note and a new invoice), or install a font that has "
        "the character and add it to app/templates/documents/invoice.css", character, where)
