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
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Integer, Select, Table, bindparam, func, insert, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.sql.elements import ColumnElement

from app.extensions import db


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def copy_rows(table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` in the current transaction.

    JSON columns take Python values (dicts, lists). Objects pending in the session are flushed
    first, so rows may refer to them.
    """
    session = db.session
    session.flush()
    if not is_postgresql():
        rows = [dict(zip(columns, row)) for row in rows]
        if rows:
            session.execute(insert(table), rows)
        return
    json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    dumps = json.dumps
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        if not json_at:
            for row in rows:
                write(row)
            return
        for row in rows:
            row = list(row)
            for i in json_at:
                row[i] = dumps(row[i])
            write(row)


def new_ids(table: Table, count: int) -> list[int]:
    """`count` unused ids for new rows of `table`, in increasing order.

    PostgreSQL reserves them from the id sequence (gaps are harmless). SQLite has no sequence: the
    ids follow the largest one, so the caller must already hold the database's write lock (have
    written in this transaction, e.g. taken the entity's billing lock).
    """
    if count <= 0:
        return []
    if is_postgresql():
        return list(db.session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": count}))
    last = db.session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0
    return list(range(last + 1, last + 1 + count))


def for_each_id(query: Select, key: ColumnElement, ids: Sequence[int]) -> Result:
    """`query` for each of `ids`: its rows where `key` equals the id, each led by that id as column `key`.

    On PostgreSQL one index probe per id whatever the table's statistics say; elsewhere an IN list.
    No order is guaranteed.
    """
    if not is_postgresql():
        return db.session.execute(query.where(key.in_(list(ids))).with_only_columns(
            key.label("key"), *query.selected_columns, maintain_column_froms=True))
    wanted = func.unnest(bindparam("ids", list(ids), type_=ARRAY(Integer))).table_valued("id").render_derived(name="wanted")
    # OFFSET 0 keeps the planner from flattening the LATERAL subquery into a join it would plan as a
    # hash join over a sequential scan; so the subquery runs once per id, by the index on `key`.
    probe = query.where(key == wanted.c.id).offset(0).lateral("probe")
    return db.session.execute(select(wanted.c.id.label("key"), *probe.c).select_from(wanted).join(probe, true()))
