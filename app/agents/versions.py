"""A custom agent's versions: every change (settings, name, triggers, enabled) is a new saved state, with who
made it and when. Version 1 is its creation."""
from __future__ import annotations

from sqlalchemy import select

from app.audit import Actor
from app.extensions import db
from app.models import AgentDefinition, AgentVersion


def save_version(agent: AgentDefinition, actor: Actor, summary: str) -> AgentVersion:
    """Keep the agent's current state as its version `agent.version` (the caller has counted it up)."""
    version = AgentVersion(agent_id=agent.id, version=agent.version, name=agent.name,
                           trigger_events=list(agent.trigger_events or []), configuration=dict(agent.configuration or {}),
                           enabled=agent.enabled, changed_by=actor.label, changed_by_id=actor.user_id, summary=summary)
    db.session.add(version)
    return version


def versions_of(agent: AgentDefinition) -> list[AgentVersion]:
    """Newest first."""
    return list(db.session.scalars(select(AgentVersion).where(AgentVersion.agent_id == agent.id)
                                   .order_by(AgentVersion.version.desc())))
