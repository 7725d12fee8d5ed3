"""Verification: recompute a chain from the current rows and name the first record that does not match.

Entries are streamed in sequence order, a batch at a time; each batch's records are read back with one query
per kind (an index probe per id), so 100,000 records take seconds. What breaks a chain: an entry out of place or
whose hash does not follow from its predecessor's, a record changed (its digest differs) or deleted, a chain
head that does not end where the entries end (entries cut off), fewer records than an earlier verification
counted, and a record that no entry seals (written behind the application's back).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.transactions import transactional
from app.audit import Actor
from app.chain.content import link_hash, sealed_records
from app.chain.sealing import scope_of, unsealed
from app.extensions import db
from app.models import AuditChain, ChainEntry, ChainVerification, LegalEntity
from app.models.chain import CHAIN_KINDS, GENESIS_HASH
from app.models.types import utcnow

BATCH = 5000


@dataclass(frozen=True)
class Broken:
    seq: int | None
    kind: str
    id: int
    reason: str


@dataclass(frozen=True)
class Verification:
    entity: str  # the legal entity's code, or "organisation"
    records: int
    first_broken: Broken | None
    verified_at: datetime

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def as_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "records": self.records, "ok": self.ok,
                "first_broken": asdict(self.first_broken) if self.first_broken else None,
                "verified_at": self.verified_at.isoformat()}


def verify_chain(entity: LegalEntity | None) -> tuple[int, Broken | None, AuditChain | None]:
    """(records checked, the first broken one or None, the chain's head) of the entity's (None:
    the organisation's) chain."""
    entity_id = entity.id if entity is not None else None
    chain = db.session.scalar(select(AuditChain).where(AuditChain.scope == scope_of(entity_id)))
    count, prev = 0, GENESIS_HASH
    if chain is not None:
        table = ChainEntry.__table__
        while True:
            batch = db.session.execute(select(table).where(table.c.chain_id == chain.id, table.c.seq > count)
                                       .order_by(table.c.seq).limit(BATCH)).all()
            if not batch:
                break
            ids: dict[str, list[int]] = defaultdict(list)
            for entry in batch:
                ids[entry.kind].append(entry.record_id)
            found = {kind: sealed_records(kind, kind_ids) for kind, kind_ids in ids.items()}
            for entry in batch:
                problem = _problem(entry, count + 1, prev, found[entry.kind].get(entry.record_id), entity_id)
                if problem:
                    return count, Broken(entry.seq, entry.kind, entry.record_id, problem), chain
                count, prev = entry.seq, entry.hash
        if (chain.last_seq, chain.last_hash) != (count, prev):
            return count, Broken(count or None, "chain", chain.id,
                                 f"the chain's head says {chain.last_seq} records, its entries end at {count}"), chain
        previous = db.session.scalar(select(func.max(ChainVerification.records))
                                     .where(ChainVerification.chain_id == chain.id))
        if previous is not None and previous > count:
            return count, Broken(count or None, "chain", chain.id,
                                 f"an earlier verification counted {previous} records, now {count}"), chain
    for kind in CHAIN_KINDS:
        first = db.session.scalar(unsealed(kind, entity_id, limit=1))
        if first is not None:
            return count, Broken(None, kind, first, "not sealed: no chain entry holds this record"), chain
    return count, None, chain


def _problem(entry, seq: int, prev: str, sealed, entity_id: int | None) -> str | None:
    if entry.seq != seq:
        return f"entry {seq} is missing"
    if entry.prev_hash != prev:
        return "its link does not follow the entry before it"
    if link_hash(entry.prev_hash, entry.seq, entry.kind, entry.record_id, entry.digest) != entry.hash:
        return "the entry's hash does not match the entry"
    if sealed is None:
        return "the record was deleted"
    if sealed.legal_entity_id != entity_id:
        return "the record was moved to another legal entity"
    if sealed.digest != entry.digest:
        return "the record was changed after it was sealed"
    return None


@transactional
def verify(entity: LegalEntity | None, actor: Actor) -> Verification:
    """Verify the chain and keep the result (in the caller's transaction, which commits it)."""
    records, broken, chain = verify_chain(entity)
    result = Verification(entity.code if entity is not None else "organisation", records, broken, utcnow())
    if chain is None:
        from app.chain.sealing import lock_chain

        chain = lock_chain(entity.id if entity is not None else None)
    db.session.add(ChainVerification(chain_id=chain.id, verified_at=result.verified_at, verified_by=actor.label,
                                     records=records, ok=result.ok,
                                     first_broken=asdict(broken) if broken else None))
    return result


def last_verifications() -> list[tuple[int | None, str, str, ChainVerification | None]]:
    """(entity id, code, name, the last verification or None) for the organisation's chain and each legal entity's."""
    latest = select(ChainVerification.chain_id, func.max(ChainVerification.id).label("id")) \
        .group_by(ChainVerification.chain_id).subquery()
    by_scope = {chain.scope: verification for chain, verification in db.session.execute(
        select(AuditChain, ChainVerification).join(latest, latest.c.chain_id == AuditChain.id)
        .join(ChainVerification, ChainVerification.id == latest.c.id))}
    rows = [(None, "organisation", "Organisation (users and settings)", by_scope.get(scope_of(None)))]
    for entity in db.session.scalars(select(LegalEntity).order_by(LegalEntity.code)):
        rows.append((entity.id, entity.code, entity.name, by_scope.get(scope_of(entity.id))))
    return rows
