"""Where a setting's value comes from: the contract's own, else the legal entity's, else the agent's default.

Two settings are set at more than one level: payment terms (contract > legal entity > Billing Run Agent) and
SEPA collection lead days (legal entity > Payment Collection Agent). `first_set` is the rule the billing and
collection code apply; `payment_terms` / `collection_lead_days` say it in words for the pages ("14 days, from
the legal entity DE01; the agent's default 30 does not apply"), and `entity_overrides` names the legal
entities whose own value wins over an agent setting, for the agent's Configuration tab.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Contract, LegalEntity

# (agent key, setting) → the legal entity's column that takes precedence over it
ENTITY_OVERRIDES = {("billing_run", "payment_terms_days"): "payment_terms_days",
                    ("payment_collection", "collection_lead_days"): "collection_lead_days"}


def first_set(*values: int | None) -> tuple[int | None, int]:
    """The first value that is set (not None), and its position; (None, -1) when none is."""
    for position, value in enumerate(values):
        if value is not None:
            return value, position
    return None, -1


@dataclass(frozen=True)
class Sourced:
    value: int
    source: str  # "contract" | "legal_entity" | "agent"
    text: str  # the value and where it comes from, in words

    def __str__(self) -> str:
        return self.text


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _sourced(levels: list[tuple[str, str, int | None]]) -> Sourced:
    """levels: (source, its name in words, value) from the most specific to the agent's default."""
    value, at = first_set(*(v for _, _, v in levels))
    source, name, _ = levels[at]
    ignored = [f"{other} {_days(v)}" for _, other, v in levels[at + 1:] if v is not None and v != value]
    text = f"{_days(value)}, from {name}"
    if ignored:
        text += "; " + " and ".join(ignored) + (" does" if len(ignored) == 1 else " do") + " not apply"
    return Sourced(value, source, text)


def payment_terms(entity: LegalEntity, contract: Contract | None = None, agent_default: int | None = None) -> Sourced:
    """The payment terms an invoice of `contract` (or of the entity, without one) gets, and why."""
    if agent_default is None:
        from app.billing.runs import agent_settings

        agent_default = int(agent_settings()["payment_terms_days"])
    levels = [("legal_entity", f"the legal entity {entity.code}", entity.payment_terms_days),
              ("agent", "the Billing Run Agent's default", agent_default)]
    if contract is not None:
        levels.insert(0, ("contract", "the contract", contract.payment_terms_days))
    return _sourced(levels)


def collection_lead_days(entity: LegalEntity, agent_value: int | None = None) -> Sourced:
    """Days between closing the entity's SEPA batch and the earliest collection date asked of the bank, and why."""
    if agent_value is None:
        from app.payments.collection import settings

        agent_value = int(settings()["collection_lead_days"])
    return _sourced([("legal_entity", f"the legal entity {entity.code}", entity.collection_lead_days),
                     ("agent", "the Payment Collection Agent's setting", agent_value)])


def entity_overrides(agent_key: str, setting: str) -> list[tuple[str, int]]:
    """(code, value) of the legal entities whose own value replaces this agent setting, by code."""
    column = ENTITY_OVERRIDES.get((agent_key, setting))
    if column is None:
        return []
    attribute = getattr(LegalEntity, column)
    return list(db.session.execute(select(LegalEntity.code, attribute).where(attribute.is_not(None))
                                   .order_by(LegalEntity.code)).tuples().all())
