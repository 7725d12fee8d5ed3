"""A custom agent's versions: every change (settings, name, triggers, enabled) is a new saved state, with who
made it and when. Version 1 is its creation."""
from __future__ import annotations

import hashlib

from sqlalchemy import select

from app.agents.registry import spec_of
from app.audit import Actor
from app.extensions import db
from app.models import AgentDefinition, AgentVersion


def save_version(agent: AgentDefinition, actor: Actor, summary: str) -> AgentVersion:
    """Keep the agent's current state as its version `agent.version` (the caller has counted it up)."""
    spec = spec_of(agent)
    secrets = {s.name for s in spec.settings if s.secret} if spec else set()
    # A secret is kept as a fingerprint: a change shows, the value does not.
    configuration = {name: (_fingerprint(value) if name in secrets and value else value)
                     for name, value in (agent.configuration or {}).items()}
    version = AgentVersion(agent_id=agent.id, version=agent.version, name=agent.name,
                           trigger_events=list(agent.trigger_events or []), configuration=configuration,
                           enabled=agent.enabled, changed_by=actor.label, changed_by_id=actor.user_id, summary=summary)
    db.session.add(version)
    return version


def _fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:12]


def versions_of(agent: AgentDefinition) -> list[AgentVersion]:
    """Newest first."""
    return list(db.session.scalars(select(AgentVersion).where(AgentVersion.agent_id == agent.id)
                                   .order_by(AgentVersion.version.desc())))
