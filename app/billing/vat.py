"""VAT categories (EN 16931 / UNTDID 5305), their rules, and the tax codes a new legal entity starts with.

Pure: plain values in, plain values or problems (phrased for a person) out. The rules are the
EN 16931 business rules of each category, cited by id: what rate a category allows (BR-S-05,
BR-Z-05, BR-AE-05...), whether it needs an exemption reason (BR-E-10, BR-AE-10...) or must not have
one (BR-S-10, BR-Z-10), and which VAT identifiers the parties must have (BR-AE-02, BR-IC-02,
BR-G-02, BR-O-02...).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    zero_rate: bool  # the rate must be 0 (and for O it is not stated at all: BR-O-05)
    needs_reason: bool  # an exemption reason text or code is required (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10)
    refuses_reason: bool  # an exemption reason is not allowed (BR-S-10, BR-Z-10, BR-AF-10, BR-AG-10)
    needs_buyer_vat_id: bool  # BR-AE-02 (or the buyer's legal registration), BR-IC-02


CATEGORIES: dict[str, Category] = {c.code: c for c in (
    Category("S", "Standard rate", False, False, True, False),
    Category("Z", "Zero rated goods", True, False, True, False),
    Category("E", "Exempt from VAT", True, True, False, False),
    Category("AE", "VAT reverse charge", True, True, False, True),
    Category("K", "Intra-community supply (VAT exempt for EEA)", True, True, False, True),
    Category("G", "Free export item, VAT not charged", True, True, False, False),
    Category("O", "Services outside scope of tax", True, True, False, False),
    Category("L", "Canary Islands general indirect tax (IGIC)", False, False, True, False),
    Category("M", "Tax for production, services and importation in Ceuta and Melilla (IPSI)", False, False, True, False),
)}
CATEGORY_CODES = tuple(CATEGORIES)


@dataclass(frozen=True)
class TaxTreatment:
    """How one line is taxed, as a tax code says: what the e-invoice states per line and per breakdown."""

    category: str
    code: str | None = None  # the tax code it came from (DE_VAT_19), None for a line without one
    reason: str | None = None  # BT-120
    reason_code: str | None = None  # BT-121 (VATEX)
    note: str | None = None  # the wording printed on the invoice

    @classmethod
    def implied(cls, rate: Decimal) -> "TaxTreatment":
        """A line without a tax code (before tax codes existed): standard rate, or zero rated at 0 %."""
        return cls("S" if rate > 0 else "Z")


# ------------------------------------------------------------------ one code
VATEX = re.compile(r"VATEX-[A-Z]{2}(-[A-Z0-9]+){1,3}")


def code_problems(category: str, rate: Decimal | None, reason: str | None, reason_code: str | None) -> dict[str, str]:
    """What is wrong with a tax code's category, rate and exemption reason; keys are the fields."""
    problems: dict[str, str] = {}
    spec = CATEGORIES.get(category)
    if spec is None:
        return {"category": f"{category!r} is not an EN 16931 VAT category: use one of {', '.join(CATEGORY_CODES)}"}
    if rate is not None:
        if spec.zero_rate and rate != ZERO:
            problems["rate"] = f"category {category} ({spec.name}) has the rate 0, not {rate}"
        elif category == "S" and rate <= ZERO:
            problems["rate"] = "category S (standard rate) needs a rate above 0: use Z, E or another category for 0"
    if spec.needs_reason and not (reason or reason_code):
        problems["reason"] = (f"category {category} ({spec.name}) needs an exemption reason (BR-{_rule(category)}-10): "
                              "say why no VAT is charged, e.g. the article of the law")
    if spec.refuses_reason and (reason or reason_code):
        problems["reason"] = f"category {category} ({spec.name}) takes no exemption reason (BR-{_rule(category)}-10)"
    if reason_code and not VATEX.fullmatch(reason_code):
        problems["reason_code"] = (f"{reason_code!r} is not a VATEX code (CEF VATEX list, e.g. VATEX-EU-AE, "
                                   "VATEX-EU-IC, VATEX-EU-G, VATEX-EU-O, VATEX-EU-132-1A)")
    return problems


def _rule(category: str) -> str:
    return {"K": "IC", "L": "AF", "M": "AG"}.get(category, category)


# ------------------------------------------------------------------ one document
def document_problems(treatments: Iterable[TaxTreatment], *, seller_vat_id: str | None,
                      buyer_vat_id: str | None, seller_registration_id: str | None = None) -> list[str]:
    """Why an invoice with these lines' treatments cannot be issued to these parties (EN 16931), or [].

    What every invoice needs whatever its categories (the seller's address and VAT ID or tax number,
    BR-S-02 and § 14 UStG) is checked with the parties, not here.
    """
    categories = {t.category for t in treatments}
    problems: list[str] = []
    if categories & {"AE", "K"} and not buyer_vat_id:
        names = " and ".join(f"{c} ({CATEGORIES[c].name.lower()})" for c in sorted(categories & {"AE", "K"}))
        problems.append(f"category {names} needs the customer's VAT ID (BR-AE-02, BR-IC-02): add it to the customer")
    if categories & {"AE", "K", "G"} and not seller_vat_id:
        names = ", ".join(sorted(categories & {"AE", "K", "G"}))
        problems.append(f"category {names} needs the legal entity's VAT ID (BR-AE-02, BR-IC-02, BR-G-02): "
                        "add it in the entity's settings")
    if categories == {"O"} and not seller_registration_id:
        # BR-O-02 keeps the VAT ID off such an invoice, and BR-CO-26 then wants the legal registration (BT-30).
        problems.append("an invoice not subject to VAT (category O) states no VAT ID, so it needs the legal "
                        "entity's registration ID (BR-CO-26): add it in the entity's settings")
    if "O" in categories and len(categories) > 1:
        problems.append("a line not subject to VAT (category O) cannot share an invoice with taxed lines (BR-O-11): "
                        "bill them on separate contracts")
    return problems


# ------------------------------------------------------------------ countries
# VAT rates in force (percent) for the countries whose rates we know; the first is the standard rate.
# A rate given without a tax code is accepted only if it is one of these (or 0, zero rated).
COUNTRY_RATES: dict[str, tuple[str, ...]] = {
    "AT": ("20", "13", "10"), "BE": ("21", "12", "6"), "BG": ("20", "9"), "CY": ("19", "9", "5", "3"),
    "CZ": ("21", "12"), "DE": ("19", "7"), "DK": ("25",), "EE": ("24", "13", "9", "5"),
    "ES": ("21", "10", "4"), "FI": ("25.5", "14", "13.5", "10"), "FR": ("20", "10", "5.5", "2.1"),
    "GR": ("24", "13", "6"), "HR": ("25", "13", "5"), "HU": ("27", "18", "5"), "IE": ("23", "13.5", "9", "4.8"),
    "IT": ("22", "10", "5", "4"), "LT": ("21", "12", "9", "5"), "LU": ("17", "14", "8", "3"),
    "LV": ("21", "12", "5"), "MT": ("18", "7", "5"), "NL": ("21", "9"), "PL": ("23", "8", "5"),
    "PT": ("23", "13", "6"), "RO": ("21", "11"), "SE": ("25", "12", "6"), "SI": ("22", "9.5", "5"),
    "SK": ("23", "19", "5"), "GB": ("20", "5"), "CH": ("8.1", "3.8", "2.6"), "NO": ("25", "15", "12"),
    "JP": ("10", "8"),
}  # fmt: skip
EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})


def country_rates(country: str) -> tuple[Decimal, ...] | None:
    """The country's VAT rates, standard first; None when we do not know them."""
    rates = COUNTRY_RATES.get(country)
    return None if rates is None else tuple(Decimal(r) for r in rates)


def rate_code(country: str, rate: Decimal) -> str:
    """The name of a country's code for a rate: DE_VAT_19, FR_VAT_5_5, DE_ZERO."""
    if rate == ZERO:
        return f"{country}_ZERO"
    return f"{country}_VAT_{format(rate.normalize(), 'f').replace('.', '_')}"


@dataclass(frozen=True)
class CodeTemplate:
    code: str
    rate: Decimal
    category: str
    reason: str | None = None
    reason_code: str | None = None
    note: str | None = None


# Wording printed on the invoice, in the entity country's language and English (§ 14a UStG, CGI art. 242 nonies A).
_CROSS_BORDER = {
    "DE": {
        "RC": ("Steuerschuldnerschaft des Leistungsempfängers / Reverse charge", "§ 13b UStG; Art. 196 MwStSystRL"),
        "IC": ("Steuerfreie innergemeinschaftliche Lieferung / Intra-community supply exempt from VAT",
               "§ 4 Nr. 1b UStG; Art. 138 MwStSystRL"),
        "EXPORT": ("Steuerfreie Ausfuhrlieferung / Export outside the EU, VAT not charged", "§ 4 Nr. 1a UStG"),
        "EXEMPT": ("Steuerfreie Leistung / Exempt from VAT", "Steuerbefreit nach § 4 UStG"),
        "OUTSIDE": ("Nicht im Inland steuerbare Leistung / Not subject to VAT", "Nicht steuerbar (§ 3a UStG)"),
    },
    "FR": {
        "RC": ("Autoliquidation / Reverse charge", "Article 283-2 du CGI; art. 196 directive 2006/112/CE"),
        "IC": ("Exonération de TVA, article 262 ter I du CGI / Intra-community supply exempt from VAT",
               "Article 262 ter I du CGI"),
        "EXPORT": ("Exonération de TVA, article 262 I du CGI / Export outside the EU", "Article 262 I du CGI"),
        "EXEMPT": ("Exonération de TVA, article 261 du CGI / Exempt from VAT", "Article 261 du CGI"),
        "OUTSIDE": ("TVA non applicable / Not subject to VAT", "Hors champ d'application de la TVA"),
    },
}
_CROSS_BORDER_EN = {
    "RC": ("Reverse charge: the customer accounts for the VAT", "Article 196 of Council Directive 2006/112/EC"),
    "IC": ("Intra-community supply exempt from VAT", "Article 138 of Council Directive 2006/112/EC"),
    "EXPORT": ("Export outside the EU, VAT not charged", "Article 146 of Council Directive 2006/112/EC"),
    "EXEMPT": ("Exempt from VAT", "Exempt from VAT"),
    "OUTSIDE": ("Not subject to VAT", "Outside the scope of VAT"),
}
_SMALL_BUSINESS = {
    "DE": CodeTemplate("DE_SMALL_BUSINESS", ZERO, "E", "Kleinunternehmer gemäß § 19 UStG", None,
                       "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet. / Small business: no VAT charged "
                       "(§ 19 UStG)."),
    "FR": CodeTemplate("FR_FRANCHISE", ZERO, "E", "TVA non applicable, art. 293 B du CGI", "VATEX-FR-FRANCHISE",
                       "TVA non applicable, art. 293 B du CGI / VAT not applicable (franchise en base)."),
}


def default_codes(country: str) -> list[CodeTemplate]:
    """The tax codes a new legal entity in `country` starts with: its rates, zero rated, and the cross-border ones."""
    codes = [CodeTemplate(rate_code(country, rate), rate, "S") for rate in country_rates(country) or ()]
    codes.append(CodeTemplate(rate_code(country, ZERO), ZERO, "Z"))
    wording = _CROSS_BORDER.get(country, _CROSS_BORDER_EN)
    for key, code, category, vatex in (("RC", f"{country}_RC", "AE", "VATEX-EU-AE"),
                                       ("IC", "EU_IC", "K", "VATEX-EU-IC"),
                                       ("EXPORT", "EXPORT", "G", "VATEX-EU-G"),
                                       ("EXEMPT", "EXEMPT", "E", None),
                                       ("OUTSIDE", "NOT_SUBJECT", "O", "VATEX-EU-O")):
        note, reason = wording[key]
        if key in ("IC",) and country not in EU:
            continue  # an intra-community supply is made from an EU member state
        codes.append(CodeTemplate(code, ZERO, category, reason, vatex, note))
    if country in _SMALL_BUSINESS:
        codes.append(_SMALL_BUSINESS[country])
    return codes


def standard_rate_allowed(country: str, rate: Decimal) -> bool:
    """Whether a bare rate (a CSV's tax_rate, a form's VAT rate) may become a code of this country's."""
    if rate == ZERO:
        return True
    rates = country_rates(country)
    return rates is None or rate in rates
