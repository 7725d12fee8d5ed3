"""Complete parties: structured postal addresses, seller identifiers and contact, buyer references.

Legal entities and customers get address lines, postcode, city and subdivision (and customers a
country); the free-text `legal_entities.address` and `customers.billing_address` are split into
them by `split_address` and dropped. Legal entities get a tax number (BT-32), a registration id
(BT-30) and a contact (BT-41..43); customers a buyer reference (BT-10); contracts a purchase order
reference (BT-13).

The splitter lives here, not in the app: after this migration nothing reads free-text addresses.
A customer address without a country line is taken to be in the entity's country only when its
postcode has that country's form (or there is none); a postcode only one country writes
(00-514 → PL, 〒100-0001 / 100-0001 → JP, 1000-001 → PT, 94043-1351 → US) gives that country;
otherwise the country stays empty and the billing run names the customer until someone fills it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 09:00:00.000000

"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

LENGTHS = {"address_line1": 200, "address_line2": 200, "postcode": 16, "city": 100, "subdivision": 100}
ADDRESS_COLUMNS = tuple(LENGTHS)


class SplitAddress(NamedTuple):
    address_line1: str | None
    address_line2: str | None
    postcode: str | None
    city: str | None
    subdivision: str | None
    country: str | None


# ------------------------------------------------------------------ the splitter
_NOT_ISO_3166 = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ|AC|CP|CQ|DG|EA|IC|TA|EU|EZ|UN")
_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "pt", "et", "sv", "da", "fi", "cs", "ja", "zh", "ko")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country names in the languages addresses are written in, lower-cased → ISO code."""
    from babel import Locale

    names: dict[str, str] = {}
    for language in _LANGUAGES:
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha() and not _NOT_ISO_3166.fullmatch(code):
                names.setdefault(name.lower(), code)
    names.update({"usa": "US", "u.s.a": "US", "uk": "GB", "great britain": "GB", "nippon": "JP"})
    return names


def _country(line: str) -> str | None:
    text = line.strip().rstrip(".").strip()
    if re.fullmatch(r"[A-Z]{2}", text) and text in _country_names().values():
        return text
    return _country_names().get(text.lower())


_POSTAL_MARK = re.compile(r"^〒\s*(\d{3}-?\d{4})\s*(.*)$")  # Japan's postal mark, with or without the rest
_POSTCODE = (r"\d{2}-\d{3}|\d{3}-\d{4}|\d{4}-\d{3}|\d{5}-\d{4}|\d{4} ?[A-Z]{2}|\d{4,6}|\d{3} \d{2}"
             r"|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}")
_POSTCODE_CITY = re.compile(rf"^(?:[A-Z]{{1,2}}-)?({_POSTCODE})\s+(.+)$")  # "10117 Berlin", "00-514 Warszawa"
# "Springfield, IL 62704", "Chiyoda-ku, Tokyo 100-0005", "Tokyo 100-0005"
_CITY_POSTCODE = re.compile(r"^(.+?),?\s+(?:([A-Z]{2}|[^\d,]+?)\s+)?(\d{5}(?:-\d{4})?|\d{3}-\d{4})$")
# 東京都千代田区千代田1-1: prefecture, municipality, the rest
_JAPANESE = re.compile(r"^(東京都|北海道|京都府|大阪府|\S{2,3}県)(\S+?[市区町村])\s*(.*)$")

# Postcodes that only one country writes this way.
_ONLY = ((re.compile(r"\d{2}-\d{3}"), "PL"), (re.compile(r"\d{3}-\d{4}"), "JP"), (re.compile(r"\d{4}-\d{3}"), "PT"),
         (re.compile(r"\d{5}-\d{4}"), "US"))
_FORMS = {
    "DE": r"\d{5}", "FR": r"\d{5}", "EE": r"\d{5}", "IT": r"\d{5}", "ES": r"\d{5}", "FI": r"\d{5}",
    "HR": r"\d{5}", "LT": r"\d{5}", "US": r"\d{5}(-\d{4})?", "AT": r"\d{4}", "CH": r"\d{4}", "BE": r"\d{4}",
    "DK": r"\d{4}", "NO": r"\d{4}", "LU": r"\d{4}", "HU": r"\d{4}", "SI": r"\d{4}", "NL": r"\d{4} ?[A-Z]{2}",
    "PL": r"\d{2}-\d{3}", "JP": r"\d{3}-?\d{4}", "PT": r"\d{4}-\d{3}", "SE": r"\d{3} ?\d{2}",
    "CZ": r"\d{3} ?\d{2}", "SK": r"\d{3} ?\d{2}", "IN": r"\d{6}", "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
}


def _infer_country(postcode: str | None, default_country: str | None, japanese: bool) -> str | None:
    if japanese:
        return "JP"
    if postcode is None:
        return default_country  # "Hauptstraße 1 / Berlin": written as a domestic letter
    for form, country in _ONLY:
        if form.fullmatch(postcode):
            return country
    form = _FORMS.get(default_country or "")
    if form is None or re.fullmatch(form, postcode):
        return default_country
    return None  # a postcode the entity's country does not write: not guessed


def split_address(text: str | None, default_country: str | None) -> SplitAddress:
    """A free-text address as EN 16931 fields.

    The last line is the country when it names one (Germany, Deutschland, Polska, 日本, DE…);
    otherwise see the module's docstring. "10117 Berlin", "00-514 Warszawa", "Springfield, IL
    62704", "Chiyoda-ku, Tokyo 100-0005" and "〒100-0001" give postcode, city and subdivision. More
    than two street lines are joined into the second.
    """
    lines = [re.sub(r"\s+", " ", line).strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return SplitAddress(None, None, None, None, None, None)
    country = _country(lines[-1]) if len(lines) > 1 or not any(ch.isdigit() for ch in lines[-1]) else None
    if country is not None:
        lines.pop()
    postcode = city = subdivision = None
    japanese = False
    for index, line in enumerate(lines):
        mark = _POSTAL_MARK.match(line)
        if mark:
            japanese, postcode = True, mark.group(1)
            if "-" not in postcode:
                postcode = f"{postcode[:3]}-{postcode[3:]}"
            lines[index:index + 1] = [mark.group(2)] if mark.group(2) else []
            break
    if postcode is None:
        for index in range(len(lines) - 1, -1, -1):
            match = _POSTCODE_CITY.match(lines[index])
            if match:
                postcode, city = match.group(1), match.group(2)
            else:
                match = _CITY_POSTCODE.match(lines[index])
                if match:
                    city, subdivision, postcode = match.group(1), match.group(2), match.group(3)
            if match:
                del lines[index]
                break
    if city is None:
        for index, line in enumerate(lines):
            match = _JAPANESE.match(line)
            if match:
                japanese = True
                subdivision, city = match.group(1), match.group(2)
                lines[index:index + 1] = [match.group(3)] if match.group(3) else []
                break
    if city is None and len(lines) > 1:
        city = lines.pop()
    if country is None:
        country = _infer_country(postcode, default_country, japanese)
    line1 = lines[0] if lines else None
    line2 = ", ".join(lines[1:]) or None
    return SplitAddress(line1, line2, postcode, city, subdivision, country)


def _fitted(split: SplitAddress, what: str) -> dict:
    """The split as column values; a part longer than its column is cut (and logged) rather than failing the upgrade."""
    values = split._asdict()
    for column, length in LENGTHS.items():
        value = values[column]
        if value is not None and len(value) > length:
            log.warning("%s: %s was %d characters long and is cut to %d; check it", what, column, len(value), length)
            values[column] = value[:length - 1] + "…"
    return values


def joined_address(row) -> str | None:
    """The structured address as free text again (for the downgrade)."""
    place = " ".join(part for part in (row.postcode, row.city) if part)
    lines = [row.address_line1, row.address_line2, place, row.subdivision, row.country]
    text = "\n".join(line for line in lines if line)
    return text or None


# ------------------------------------------------------------------ schema and data
def _address_columns() -> list[sa.Column]:
    return [sa.Column(name, sa.String(length=length), nullable=True) for name, length in LENGTHS.items()]


def upgrade():
    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        for column in _address_columns():
            batch_op.add_column(column)
        batch_op.add_column(sa.Column('tax_number', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('registration_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('contact_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        for column in _address_columns():
            batch_op.add_column(column)
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('buyer_reference', sa.String(length=200), nullable=True))
        batch_op.create_check_constraint(op.f('ck_customers_country_iso'), 'country IS NULL OR length(country) = 2')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('po_reference', sa.String(length=100), nullable=True))

    conn = op.get_bind()
    entities = sa.table('legal_entities', sa.column('id'), sa.column('address'), sa.column('country'),
                        *(sa.column(c) for c in ADDRESS_COLUMNS))
    customers = sa.table('customers', sa.column('id'), sa.column('legal_entity_id'), sa.column('billing_address'),
                         sa.column('country'), *(sa.column(c) for c in ADDRESS_COLUMNS))
    countries = {}
    for row in conn.execute(sa.select(entities.c.id, entities.c.address, entities.c.country)).all():
        countries[row.id] = row.country
        if row.address:
            values = _fitted(split_address(row.address, row.country), f"legal entity {row.id}")
            values.pop("country")  # the entity's own country column stays what it is
            conn.execute(entities.update().where(entities.c.id == row.id).values(**values))
    for row in conn.execute(sa.select(customers.c.id, customers.c.legal_entity_id, customers.c.billing_address)
                            .where(customers.c.billing_address.is_not(None))).all():
        values = _fitted(split_address(row.billing_address, countries.get(row.legal_entity_id)), f"customer {row.id}")
        conn.execute(customers.update().where(customers.c.id == row.id).values(**values))

    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        batch_op.drop_column('address')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('billing_address')


def downgrade():
    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.Text(), nullable=True))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing_address', sa.Text(), nullable=True))
    conn = op.get_bind()
    for table, text_column, has_country in (('legal_entities', 'address', False), ('customers', 'billing_address', True)):
        parts = sa.table(table, sa.column('id'), sa.column(text_column), sa.column('country'),
                         *(sa.column(c) for c in ADDRESS_COLUMNS))
        for row in conn.execute(sa.select(parts.c.id, parts.c.country, *(parts.c[c] for c in ADDRESS_COLUMNS))).all():
            text = joined_address(row)
            if text:
                conn.execute(parts.update().where(parts.c.id == row.id).values({text_column: text}))
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('po_reference')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_customers_country_iso'), type_='check')
        for column in ('buyer_reference', 'country', *ADDRESS_COLUMNS):
            batch_op.drop_column(column)
    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        for column in ('contact_email', 'contact_phone', 'contact_name', 'registration_id', 'tax_number',
                       *ADDRESS_COLUMNS):
            batch_op.drop_column(column)
