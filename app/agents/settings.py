"""An agent's settings as services read them: one reader for every agent.

An agent's handler calls `agent_settings(key)` and passes the values down as plain arguments (the Invoice
Delivery Agent's `deliver` hands `MailTemplates` to the delivery service); the settings are the agent row's
configuration over its spec's defaults. Two policies are read where they apply, because people reach them
without an agent too: the Payment Collection Agent's retry days and lead days (a bank statement or a result
file a person imports schedules a returned debit's retry; closing a batch by hand dates it), and the Billing
Run Agent's defaults (a run a person starts, the payment terms a contract page shows).
"""
from __future__ import annotations

from typing import Any

from rq import Retry
from sqlalchemy import select

from app.agents.registry import spec_of
from app.extensions import db
from app.models import AgentDefinition


def agent_row(key: str) -> AgentDefinition | None:
    return db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == key))


def configuration_of(agent: AgentDefinition) -> dict[str, Any]:
    """The agent's configuration over its spec's defaults (a setting added since it was saved has its default)."""
    spec = spec_of(agent)
    return {**(spec.defaults() if spec else {}), **(agent.configuration or {})}


def agent_settings(key: str) -> dict[str, Any]:
    """The settings of agent `key`; LookupError when its row is missing (`flask db upgrade` writes it)."""
    agent = agent_row(key)
    if agent is None:
        raise LookupError(f"agent {key!r} is missing: run `flask db upgrade`")
    return configuration_of(agent)


def minutes_retry(minutes_text: str) -> Retry | None:
    """RQ Retry from a "days"-type setting holding minutes, e.g. "1,5,30" → three retries with backoff."""
    minutes = [int(m) for m in str(minutes_text).split(",") if m.strip()]
    return Retry(max=len(minutes), interval=[m * 60 for m in minutes]) if minutes else None


def retry_policy(agent: AgentDefinition) -> Retry | None:
    """The agent's RQ retry policy from its spec's retry setting (None: not retried)."""
    spec = spec_of(agent)
    if spec is None or spec.retry_setting is None:
        return None
    return minutes_retry(configuration_of(agent)[spec.retry_setting])
