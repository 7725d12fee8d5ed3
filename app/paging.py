"""Keyset paging: every list pages by the key of its last (or first) row, never by OFFSET.

A list names the orders people sort it by (`Ordering`, a tuple of `Sort`s); each sort is a total order: its
columns, then the primary key as tie-breaker. A page is read as "the `per_page` rows after (or before) this
row in this order": `WHERE (keys) beyond (values) ORDER BY keys LIMIT per_page + 1`, which an index on the keys
answers in the same time on page 1 and page 500 (OFFSET reads and throws away every row before the page).

NULLs sort as the greatest value (PostgreSQL's default, and what a backwards index scan gives): last when
ascending, first when descending. Only keys marked `nullable` pay for the extra IS NULL conditions.

The cursor in the URL (`?after=…` / `?before=…`) is the sort's name and the row's key values, JSON signed with
the app's secret key (itsdangerous): a changed, truncated or foreign cursor is refused (`CursorError`), never
turned into SQL. Counting every matching row costs as much as reading them all, so a list counts up to
COUNT_CAP rows and says "more than" beyond (`count_upto`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, and_, false, func, or_, select, true

from app.errors import CursorError
from app.extensions import db

PER_PAGE = 25
COUNT_CAP = 10_000  # rows counted exactly; beyond, a list says "more than 10,000" (400 pages of 25)


@dataclass(frozen=True)
class Key:
    """A column (or SQL expression) of a sort; `nullable` when it may be NULL."""
    column: Any
    nullable: bool = False


@dataclass(frozen=True)
class Sort:
    """One order of a list: `name` in the URL (`?sort=due`, `?sort=-due` descending), `label` on the column
    header, `keys` ending with the primary key. `descending_first`: a header click sorts newest/largest first."""
    name: str
    label: str
    keys: tuple[Key, ...]
    descending_first: bool = False


@dataclass(frozen=True)
class Ordering:
    """The sorts a list offers and its default (`"-period"`: period, descending)."""
    sorts: tuple[Sort, ...]
    default: str

    def find(self, value: str) -> tuple[Sort, bool] | None:
        """(sort, descending) for a URL value such as "-due"; None for an unknown one."""
        name, descending = (value[1:], True) if value.startswith("-") else (value, False)
        return next(((s, descending) for s in self.sorts if s.name == name), None)

    def choices(self) -> list[str]:
        return [s.name for s in self.sorts]


def key(*columns, nullable: Sequence[Any] = ()) -> tuple[Key, ...]:
    """Keys of a sort: `key(Invoice.number, Invoice.id, nullable=[Invoice.number])`."""
    return tuple(Key(c, any(c is n for n in nullable)) for c in columns)


# ------------------------------------------------------------------ the cursor
_SALT = "arbill.keyset.v1"


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"a sort key of type {type(value).__name__} cannot go into a cursor")


def _load(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        loader = {"t": datetime.fromisoformat, "d": date.fromisoformat, "n": Decimal}.get(tag)
        if loader is not None and isinstance(text, str):
            return loader(text)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise ValueError("not a key value")


def encode_cursor(secret: str, sort_value: str, values: Sequence[Any]) -> str:
    """The URL's cursor for the row with key `values` in the order `sort_value` ("-due")."""
    return URLSafeSerializer(secret, salt=_SALT).dumps([sort_value, *(_dump(v) for v in values)])


def decode_cursor(secret: str, token: str, sort_value: str, width: int) -> list[Any]:
    """The key values of a cursor made by `encode_cursor` for this order; CursorError saying what is wrong."""
    try:
        payload = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except BadData:
        raise CursorError("it is damaged or was made for another server (copy the whole link, or start again "
                          "from the first page)") from None
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
        raise CursorError("it holds no row of this list")
    if payload[0] != sort_value:
        raise CursorError(f"it was made for the order {payload[0]!r}, not {sort_value!r} "
                          "(change the order from the first page)")
    if len(payload) != width + 1:
        raise CursorError("it holds no row of this list")
    try:
        return [_load(v) for v in payload[1:]]
    except (ValueError, ArithmeticError):
        raise CursorError("it holds a value that is not a key of this list") from None


# ------------------------------------------------------------------ the SQL
def _order(k: Key, descending: bool):
    if not k.nullable:
        return k.column.desc() if descending else k.column.asc()
    return k.column.desc().nulls_first() if descending else k.column.asc().nulls_last()


def _equal(k: Key, value: Any):
    return k.column.is_(None) if value is None else k.column == value


def _past(k: Key, descending: bool, value: Any):
    """Rows whose key `k` comes strictly after `value` in the direction (NULL is the greatest value)."""
    if descending:
        if value is None:
            return k.column.is_not(None) if k.nullable else false()
        return k.column < value
    if value is None:
        return false()
    return or_(k.column > value, k.column.is_(None)) if k.nullable else k.column > value


def beyond(keys: Sequence[Key], directions: Sequence[bool], values: Sequence[Any]):
    """WHERE: the rows after the row with `values` in the order (keys, directions)."""
    branches = [and_(*(_equal(keys[j], values[j]) for j in range(i)), _past(keys[i], directions[i], values[i]))
                for i in range(len(keys))]
    condition = or_(*branches)
    lead, first = keys[0], values[0]
    if first is not None and not lead.nullable:  # the same rows, said so that an index range starts there
        condition = and_(lead.column <= first if directions[0] else lead.column >= first, condition)
    return condition if branches else true()


def count_upto(query: Select, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(rows, more): how many rows `query` gives, counting at most `cap`; `more` when there are more."""
    limited = query.order_by(None).limit(cap + 1).subquery()
    found = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return min(found, cap), found > cap


@dataclass
class KeysetPage:
    """One page of a list: its rows, the order, the cursors of the pages around it and the (capped) count."""
    items: list
    sort: str  # the URL value: "-period"
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    more: bool = False  # more than `total` (COUNT_CAP) rows match
    per_page: int = PER_PAGE
    ordering: Ordering | None = field(default=None, repr=False)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_prev(self) -> bool:
        return self.prev_cursor is not None

    @property
    def counted(self) -> str:
        """How many rows match, as a page says it: "1,234", or "more than 10,000" beyond the cap."""
        return f"{'more than ' if self.more else ''}{self.total:,}"


def read_page(query: Select, ordering: Ordering, sort_value: str, secret: str, after: str | None = None,
              before: str | None = None, per_page: int = PER_PAGE, total: tuple[int, bool] | None = None
              ) -> KeysetPage:
    """The page of `query` after the cursor `after`, before `before`, or the first, in the order `sort_value`
    (one of `ordering`'s; the caller checked it). Rows hold what `query` selects: one entity, or a tuple.
    `total`: (rows, more) when the caller counted already (else `count_upto`)."""
    sort, descending = ordering.find(sort_value)
    keys = sort.keys
    directions = [descending] * len(keys)
    backwards = before is not None
    cursor = before if backwards else after
    if backwards:
        directions = [not d for d in directions]
    width = len(query.column_descriptions)  # what a row holds: entities and columns, before the keys
    paged = query.order_by(None).add_columns(*(k.column for k in keys))
    if cursor is not None:
        paged = paged.where(beyond(keys, directions, decode_cursor(secret, cursor, sort_value, len(keys))))
    paged = paged.order_by(*(_order(k, d) for k, d in zip(keys, directions))).limit(per_page + 1)
    rows = list(db.session.execute(paged))
    further = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    items = [row[0] if width == 1 else tuple(row[:width]) for row in rows]
    ends = (encode_cursor(secret, sort_value, rows[0][width:]), encode_cursor(secret, sort_value, rows[-1][width:])
            ) if rows else (None, None)
    more_before = further if backwards else cursor is not None
    more_after = True if backwards else further
    counted = total if total is not None else count_upto(query)
    return KeysetPage(items, sort_value, ends[1] if more_after and rows else None,
                      ends[0] if more_before and rows else None, counted[0], counted[1], per_page, ordering)


def in_order(query: Select, ordering: Ordering, sort_value: str) -> Select:
    """`query` in the order `sort_value` of `ordering`, keys and all (what a page reads, without the cursor)."""
    sort, descending = ordering.find(sort_value)
    return query.order_by(None).order_by(*(_order(k, descending) for k in sort.keys))


def cursor_at(query: Select, ordering: Ordering, sort_value: str, secret: str, offset: int) -> str | None:
    """The `after` cursor of the row at `offset` (0-based) in the order `sort_value`: the link to the page that
    starts at row offset + 1 (a benchmark's "page 500" without walking 499 pages; OFFSET reads every row before)."""
    keys = [k.column for k in ordering.find(sort_value)[0].keys]
    row = db.session.execute(in_order(query, ordering, sort_value).with_only_columns(*keys, maintain_column_froms=True)
                             .offset(offset).limit(1)).first()
    return None if row is None else encode_cursor(secret, sort_value, tuple(row))
