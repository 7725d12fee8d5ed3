"""The postal address: one concept for the legal entity (seller) and the customer (buyer).

Both store it in the same columns (`app.models.parties.PostalAddressColumns`); the documents, the
forms, the CSV importer and the billing run's legal check read it as a `PostalAddress`. Pure: no
Flask, no database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class PostalAddress:
    """EN 16931 BG-5 (seller) / BG-8 (buyer)."""

    lines: tuple[str, ...]  # street lines (BT-35/36, BT-50/51)
    postcode: str | None  # BT-38 / BT-53
    city: str | None  # BT-37 / BT-52
    subdivision: str | None  # BT-39 / BT-54: state, prefecture, region
    country: str | None  # BT-40 / BT-55, ISO 3166-1 alpha-2

    @classmethod
    def of(cls, line1: str | None, line2: str | None, postcode: str | None, city: str | None,
           subdivision: str | None, country: str | None) -> "PostalAddress":
        """From the stored columns (PostalAddressColumns), in their order."""
        return cls(tuple(line for line in (line1, line2) if line), postcode, city, subdivision, country)

    @property
    def is_empty(self) -> bool:
        return not (self.lines or self.postcode or self.city or self.subdivision)

    def missing(self) -> list[str]:
        """What an invoice's address needs and this one lacks: a street line, the city, the country.

        The postcode is not required: some countries have none (Hong Kong, Ireland before Eircode).
        """
        return [what for what, present in (("street", bool(self.lines)), ("city", bool(self.city)),
                                           ("country", bool(self.country))) if not present]

    def printed_lines(self, home_country: str | None = None) -> list[str]:
        """The address as a letter shows it: street lines, "postcode city" (or "city subdivision
        postcode" in the US/JP style), and the country's name unless it is `home_country`."""
        lines = list(self.lines)
        place = " ".join(part for part in (self.postcode, self.city) if part)
        if self.country in _CITY_FIRST:
            place = " ".join(part for part in (self.city, self.subdivision, self.postcode) if part)
        elif self.subdivision:
            place = f"{place}, {self.subdivision}" if place else self.subdivision
        if place:
            lines.append(place)
        if self.country and self.country != home_country:
            lines.append(country_name(self.country))
        return lines


_CITY_FIRST = {"US", "CA", "AU", "JP"}  # "Springfield IL 62704", "Chiyoda-ku Tokyo 100-0005"


# ------------------------------------------------------------------ countries
# CLDR territories that are not ISO 3166-1 countries: user-assigned codes (AA, QM-QZ, XA-XZ, ZZ),
# exceptionally reserved ones (AC, CP, CQ, DG, EA, IC, TA) and groupings (EU, EZ, UN).
_NOT_ISO_3166 = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ|AC|CP|CQ|DG|EA|IC|TA|EU|EZ|UN")


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes (as Babel's CLDR data knows them)."""
    from babel import Locale

    return frozenset(code for code in Locale("en").territories
                     if len(code) == 2 and code.isalpha() and not _NOT_ISO_3166.fullmatch(code))


def is_country(code: str | None) -> bool:
    """An ISO 3166-1 alpha-2 code, upper case."""
    return bool(code) and code in country_codes()


def country_name(code: str, language: str = "en") -> str:
    from babel import Locale

    return Locale(language).territories.get(code, code)
