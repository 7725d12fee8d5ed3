"""The audit chain: issued documents, payments and audit entries sealed by a hash chained per legal entity.

`AuditChain` is one chain's head (a legal entity's, or the organisation's for audit entries without one):
its row is locked while a transaction appends, so two transactions never chain onto the same predecessor.
`ChainEntry` rows are append-only (database triggers refuse UPDATE and DELETE); `ChainVerification` keeps
each `flask audit verify` / "Verify now" result.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.parties import LegalEntity
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

CHAIN_KINDS = ("invoice", "payment", "audit")
GENESIS_HASH = "0" * 64


class AuditChain(db.Model):
    __tablename__ = "audit_chains"
    __table_args__ = (CheckConstraint("last_seq >= 0", name="last_seq_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "entity:<id>", or "organisation" for audit entries without a legal entity (legal_entity_id NULL)
    scope: Mapped[str] = mapped_column(String(32), unique=True)
    legal_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)

    legal_entity: Mapped[LegalEntity | None] = relationship()


class ChainEntry(db.Model):
    __tablename__ = "audit_chain_entries"
    __table_args__ = (
        CheckConstraint(enum_check("kind", CHAIN_KINDS), name="kind"),
        CheckConstraint("seq > 0", name="seq_positive"),
        UniqueConstraint("kind", "record_id"),
    )

    chain_id: Mapped[int] = mapped_column(ForeignKey("audit_chains.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the record's canonical content
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # sha256 of prev_hash, seq, kind, record id and digest
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChainVerification(db.Model):
    __tablename__ = "audit_chain_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("audit_chains.id"), index=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verified_by: Mapped[str] = mapped_column(String(200))
    records: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    first_broken: Mapped[dict | None] = mapped_column(JSONType)

    chain: Mapped[AuditChain] = relationship()
