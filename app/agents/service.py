"""Agent definitions: listing them and changing their configuration (validated, audited)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.agents.registry import get_spec
from app.audit import Actor, record
from app.extensions import db
from app.models import AgentDefinition


def list_agents() -> list[AgentDefinition]:
    return list(db.session.scalars(select(AgentDefinition).order_by(AgentDefinition.id)))


def get_agent(key: str) -> AgentDefinition | None:
    return db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == key))


def current_configuration(agent: AgentDefinition) -> dict[str, Any]:
    return {**get_spec(agent.key).defaults(), **(agent.configuration or {})}


def update_configuration(agent: AgentDefinition, submitted: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Validate and save a full configuration; raises ValidationError (per field) and changes nothing then."""
    old = current_configuration(agent)
    new = get_spec(agent.key).validate_configuration(submitted)
    changes = {name: {"old": old.get(name), "new": value} for name, value in new.items() if old.get(name) != value}
    if changes:
        agent.configuration = new
        record("agent.configured", "agent", agent.id, actor, agent=agent.key, changes=changes)
    return changes


def set_enabled(agent: AgentDefinition, enabled: bool, actor: Actor) -> bool:
    if agent.enabled == enabled:
        return False
    agent.enabled = enabled
    record("agent.enabled" if enabled else "agent.disabled", "agent", agent.id, actor, agent=agent.key)
    return True
