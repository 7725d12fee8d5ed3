"""Sealing: records written in a transaction are appended to their legal entity's chain just before it commits.

Writers say what they wrote: the ORM's new audit entries, payments and numbered invoices are noticed after each
flush; set-based writers (COPY) call `pending(kind, ids)`. Before the commit, `seal_pending` reads those records
back (one query per kind), then locks each chain's head row (`audit_chains`, in id order, the last lock the
transaction takes, so no deadlock) and appends one entry per record, chained to the head's hash. Two
transactions of one entity therefore chain one after the other, never onto the same predecessor.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import event, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, attributes

from app.transactions import transactional
from app.bulk import copy_rows, is_postgresql
from app.chain.content import link_hash, sealed_records
from app.extensions import db
from app.models import AuditChain, AuditEntry, ChainEntry, Invoice, Payment
from app.models.chain import CHAIN_KINDS, GENESIS_HASH
from app.models.types import utcnow

PENDING = "audit_chain_pending"
ENTRY_COLUMNS = ("chain_id", "seq", "kind", "record_id", "digest", "prev_hash", "hash", "sealed_at")
ORGANISATION = "organisation"


def scope_of(legal_entity_id: int | None) -> str:
    """The chain's key: one per legal entity, and the organisation's for audit entries without one."""
    return ORGANISATION if legal_entity_id is None else f"entity:{legal_entity_id}"


def pending(kind: str, ids: Iterable[int], session: Session | None = None) -> None:
    """Seal these records (of `kind`) when the current transaction commits."""
    session = session or db.session()
    session.info.setdefault(PENDING, defaultdict(set))[kind].update(ids)


@event.listens_for(Session, "after_flush")
def _noticed(session: Session, _context) -> None:
    """The ORM's new audit entries and payments, and invoices that got their number, are sealed at commit."""
    for obj in session.new:
        if isinstance(obj, AuditEntry):
            pending("audit", (obj.id,), session)
        elif isinstance(obj, Payment):
            pending("payment", (obj.id,), session)
        elif isinstance(obj, Invoice) and obj.number is not None:
            pending("invoice", (obj.id,), session)
    for obj in session.dirty:
        if isinstance(obj, Invoice) and obj.number is not None and attributes.get_history(obj, "number").added:
            pending("invoice", (obj.id,), session)


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    if session.info.get(PENDING):
        seal_pending(session)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


def seal_pending(session: Session | None = None) -> int:
    """Append every record noted as pending in this transaction to its chain; returns how many."""
    session = session or db.session()
    session.flush()  # may note more
    noted = session.info.pop(PENDING, None) or {}
    by_chain: dict[int | None, list[tuple[str, int, str]]] = defaultdict(list)
    for kind in CHAIN_KINDS:
        for record_id, sealed in sorted(sealed_records(kind, noted.get(kind, ())).items()):
            by_chain[sealed.legal_entity_id].append((kind, record_id, sealed.digest))
    for legal_entity_id in sorted(by_chain, key=lambda e: -1 if e is None else e):
        append(legal_entity_id, by_chain[legal_entity_id])
    return sum(map(len, by_chain.values()))


def lock_chain(legal_entity_id: int | None) -> AuditChain:
    """The chain's head row, created when missing, locked until the end of the transaction."""
    session = db.session
    make_insert = pg_insert if is_postgresql() else sqlite_insert
    session.execute(make_insert(AuditChain.__table__)
                    .values(scope=scope_of(legal_entity_id), legal_entity_id=legal_entity_id, last_seq=0,
                            last_hash=GENESIS_HASH)
                    .on_conflict_do_nothing(index_elements=["scope"]))
    query = select(AuditChain).where(AuditChain.scope == scope_of(legal_entity_id)).execution_options(
        populate_existing=True)
    if is_postgresql():
        query = query.with_for_update()
    return session.scalars(query).one()


def append(legal_entity_id: int | None, records: list[tuple[str, int, str]]) -> None:
    """Chain (kind, record id, digest) onto the chain's head in this order."""
    if not records:
        return
    chain = lock_chain(legal_entity_id)
    seq, prev, now = chain.last_seq, chain.last_hash, utcnow()
    rows = []
    for kind, record_id, digest in records:
        seq += 1
        link = link_hash(prev, seq, kind, record_id, digest)
        rows.append((chain.id, seq, kind, record_id, digest, prev, link, now))
        prev = link
    copy_rows(ChainEntry.__table__, ENTRY_COLUMNS, rows)
    db.session.execute(update(AuditChain.__table__).where(AuditChain.__table__.c.id == chain.id)
                       .values(last_seq=seq, last_hash=prev))
    db.session.expire(chain)


def unsealed(kind: str, legal_entity_id: int | None = None, *, every_entity: bool = False, limit: int | None = None):
    """A query of the ids of records of `kind` that no chain entry seals, in id order (of one chain, or of all)."""
    table = {"invoice": Invoice, "payment": Payment, "audit": AuditEntry}[kind].__table__
    query = select(table.c.id).where(~exists().where(ChainEntry.kind == kind, ChainEntry.record_id == table.c.id))
    if kind == "invoice":
        query = query.where(table.c.number.isnot(None))
    entity = table.c.legal_entity_id if kind != "payment" else Invoice.__table__.c.legal_entity_id
    if kind == "payment":
        query = query.join(Invoice.__table__, Invoice.__table__.c.id == table.c.invoice_id)
    if not every_entity:
        query = query.where(entity.is_(None) if legal_entity_id is None else entity == legal_entity_id)
    return query.order_by(table.c.id).limit(limit)


@transactional
def seal_unsealed(legal_entity_id: int | None = None, *, every_entity: bool = False) -> int:
    """Seal what no chain holds yet (records written before migration 0016); returns how many."""
    for kind in CHAIN_KINDS:
        pending(kind, db.session.scalars(unsealed(kind, legal_entity_id, every_entity=every_entity)))
    return seal_pending()
