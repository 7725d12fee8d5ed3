"""Set-based writes and id-list lookups, the one place that differs by database.

PostgreSQL: rows are written with COPY through the session's psycopg connection, new ids are
reserved from the table's sequence, and a lookup by a list of ids probes the index once per id
(`unnest` + `LATERAL`), a plan that does not depend on table statistics. The billing run's tables
start empty and are not analyzed while a run fills them; without statistics PostgreSQL plans
`col IN (500 ids)` / `col = ANY(ARRAY[...])` as a sequential scan, which makes a run quadratic.

SQLite (the embedded default): executemany INSERTs and `IN` lists.

Everything happens in the session's current transaction.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (JSON, Date, DateTime, Numeric, Row, Select, String, Table, bindparam, cast, func, insert, select,
                        text, true, tuple_)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement, Label

from app.extensions import db

SQLITE_BATCH = 1000  # keys per IN list: SQLite limits the parameters of one statement


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def copy_rows(table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, encoded: bool = False) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` in the current transaction.

    JSON columns take Python values (dicts, lists). With `encoded`, the rows were made by
    `row_encoder` beforehand (e.g. before taking a lock), so writing them is all that is left.
    Objects pending in the session are flushed first, so rows may refer to them.
    """
    session = db.session
    session.flush()
    if not is_postgresql():
        rows = [dict(zip(columns, row)) for row in rows]
        if rows:
            session.execute(insert(table), rows)
        return
    encode = None if encoded else row_encoder(table, columns)
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row if encode is None else encode(row))


def row_encoder(table: Table, columns: Sequence[str]) -> Callable[[Sequence[Any]], list[Any]]:
    """A function turning a row (in `columns` order) into what `copy_rows(..., encoded=True)` writes.

    On PostgreSQL every value that psycopg would format slowly is turned into its COPY text now:
    JSON dumped, numbers as text, dates and timestamps formatted once per distinct value (psycopg:
    0.4, 0.7 and 2.6 us a value; a chunk's rows share a few dates). Elsewhere the values stay as
    they are. A value set into an encoded row afterwards must be an int, a str, None, or for a JSON
    column what `json_encoder()` returns.
    """
    if not is_postgresql():
        return list
    # The encoder is one generated expression, `lambda row: [row[0], str(row[1]), iso_2[row[2]], …]`,
    # as dataclasses and namedtuple generate theirs: a billing run encodes ~5 rows per contract, and a
    # loop calling a converter per value took twice as long.
    namespace: dict[str, Any] = {"str": str}
    values = []
    for i, name in enumerate(columns):
        column = table.c[name]
        if isinstance(column.type, JSON):
            namespace[f"json_{i}"] = _dump_json
            values.append(f"json_{i}(row[{i}])")
        elif isinstance(column.type, Numeric):
            values.append(f"(None if row[{i}] is None else str(row[{i}]))")
        elif isinstance(column.type, (Date, DateTime)) or isinstance(getattr(column.type, "impl", None), DateTime):
            namespace[f"iso_{i}"] = _IsoTexts()
            values.append(f"iso_{i}[row[{i}]]")
        else:
            values.append(f"row[{i}]")
    return eval(f"lambda row: [{', '.join(values)}]", namespace)  # noqa: S307 - made of indexes and names above only


class _IsoTexts(dict):
    """Date or timestamp → its ISO text, computed once per distinct value (None stays None)."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, value: Any) -> str:
        text_ = self[value] = value.isoformat()
        return text_


# What json.dumps(value) returns, without its per-call keyword handling.
_dump_json = json.JSONEncoder().encode


def json_encoder() -> Callable[[Any], Any]:
    """How a JSON value goes into a row made by `row_encoder`: dumped on PostgreSQL, as is elsewhere."""
    return _dump_json if is_postgresql() else _as_is


def _as_is(value: Any) -> Any:
    return value


def savepoint():
    """A savepoint inside the session's current transaction (`db.session.begin_nested()`).

    SQLite: the driver (pysqlite) opens a transaction only before a write, so a SAVEPOINT issued
    before any write would itself be the outermost transaction and releasing it would commit. A
    write that changes nothing opens the transaction first (and takes the database's write lock).
    """
    if not is_postgresql():
        db.session.execute(text("UPDATE legal_entities SET id = id WHERE 0"))
    return db.session.begin_nested()


def new_ids(table: Table, count: int) -> list[int]:
    """`count` unused ids for new rows of `table`, in increasing order.

    PostgreSQL reserves them from the id sequence (gaps are harmless). SQLite has no sequence: the
    ids follow the largest one, so the caller must already hold the database's write lock (have
    written in this transaction, e.g. taken the entity's billing lock).
    """
    if count <= 0:
        return []
    if is_postgresql():
        # One row of text rather than `count` rows: SQLAlchemy's per-row cost was most of the call's.
        reserved = db.session.scalar(
            text("SELECT string_agg(nextval(pg_get_serial_sequence(:table, 'id'))::text, ',') "
                 "FROM generate_series(1, :count)"),
            {"table": table.name, "count": count})
        return sorted(map(int, reserved.split(",")))
    db.session.flush()  # rows of the table still pending in the session take their ids first
    last = db.session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0
    return list(range(last + 1, last + 1 + count))


def reserve_ids(table: Table, count: int) -> list[int] | None:
    """Ids for `count` new rows of `table` taken ahead of the write, where that is safe at any time
    (PostgreSQL: from the sequence, outside any lock); None on SQLite, where `new_ids` must take
    them under the write lock."""
    return new_ids(table, count) if is_postgresql() else None


def for_each_id(query: Select, key: ColumnElement, ids: Sequence[int]) -> list[Row]:
    """`query` for each of `ids`: its rows where `key` equals the id, each led by that id as `key`."""
    return for_each_key(query, (key.label("key"),), [(i,) for i in ids])


def for_each_key(query: Select, keys: Sequence[Label], values: Sequence[Sequence[Any]]) -> list[Row]:
    """`query` for each tuple of `values`: its rows where the columns `keys` equal the tuple, each
    row led by the tuple's values (named like the labels of `keys`). No order is guaranteed. The
    values are ints or dates (written into array literals with str()) or strings (bound as an
    array, which psycopg quotes: a name may hold a comma or a brace).

    On PostgreSQL one index probe per tuple whatever the table's statistics say; elsewhere IN lists.
    """
    if not values:
        return []
    columns = [label.element for label in keys]
    if not is_postgresql():
        match = columns[0].in_ if len(columns) == 1 else tuple_(*columns).in_
        found: list[Row] = []
        for start in range(0, len(values), SQLITE_BATCH):
            batch = values[start:start + SQLITE_BATCH]
            found += db.session.execute(query.where(match([v[0] for v in batch] if len(columns) == 1 else batch))
                                        .with_only_columns(*keys, *query.selected_columns, maintain_column_froms=True))
        return found
    # Each key column as one array literal: psycopg's list dumper is pure Python (~3 us a value).
    arrays = [bindparam(f"keys_{i}", [v[i] for v in values], type_=ARRAY(column.type))
              if isinstance(values[0][i], str) else
              cast(bindparam(f"keys_{i}", "{" + ",".join([str(v[i]) for v in values]) + "}", type_=String),
                   ARRAY(column.type))
              for i, column in enumerate(columns)]
    wanted = func.unnest(*arrays).table_valued(*(label.name for label in keys)).render_derived(name="wanted")
    # OFFSET 0 keeps the planner from flattening the LATERAL subquery into a join it would plan as a
    # hash join over a sequential scan; so the subquery runs once per tuple, by an index on `keys`.
    probe = query.where(*(column == wanted.c[label.name] for column, label in zip(columns, keys)))
    probe = probe.offset(0).lateral("probe")
    # Without statistics the planner guesses ~0.5 % of the table per probe; times thousands of keys
    # that crosses jit_above_cost, and JIT-compiling the plan (60-80 ms) costs 20x running it. Off
    # for the rest of this transaction (SET LOCAL), which only holds the billing run's own work.
    db.session.execute(text("SET LOCAL jit = off"))
    return list(db.session.execute(
        select(*wanted.c, *probe.c).select_from(wanted).join(probe, true())))
