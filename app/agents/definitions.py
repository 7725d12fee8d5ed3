"""The built-in agents' rows, written from their modules' specs: no migration per agent.

`sync_definitions` runs after every `flask db upgrade` (migrations/env.py): a new agent module gets its row and
its default orchestration rules; a changed spec updates name, description, mode and triggers; settings the
admins saved are kept, settings a spec no longer declares are dropped, new ones take their default.
Rows of agents whose module is gone are left alone (their history references them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from app.agents.registry import builtin_specs
from app.models import AgentDefinition, OrchestrationRule


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def sync_definitions(conn: Connection) -> SyncResult:
    """Write the built-in agents' rows on `conn` (the migration's connection; the caller commits)."""
    result = SyncResult()
    now = datetime.now(timezone.utc)
    agents, rules = AgentDefinition.__table__, OrchestrationRule.__table__
    rows = {r.key: r for r in conn.execute(select(agents.c.key, agents.c.name, agents.c.description,
                                                  agents.c.execution_mode, agents.c.trigger_events,
                                                  agents.c.configuration).where(agents.c.custom.is_(False)))}
    for spec in builtin_specs():
        declared = {"name": spec.name, "description": spec.description, "execution_mode": spec.execution_mode,
                    "trigger_events": list(spec.trigger_events)}
        row = rows.get(spec.key)
        if row is None:
            conn.execute(insert(agents).values(key=spec.key, enabled=True, configuration=spec.defaults(),
                                               created_at=now, updated_at=now, custom=False, version=1, **declared))
            existing = set(conn.execute(select(rules.c.event_type).where(rules.c.agent_key == spec.key)).scalars())
            for event_type in spec.subscribes:
                if event_type not in existing:
                    conn.execute(insert(rules).values(event_type=event_type, agent_key=spec.key, enabled=True,
                                                      created_at=now, updated_at=now))
            result.created.append(spec.key)
            continue
        saved = row.configuration or {}
        configuration = {name: saved.get(name, default) for name, default in spec.defaults().items()}
        current = {"name": row.name, "description": row.description, "execution_mode": row.execution_mode,
                   "trigger_events": row.trigger_events}
        if current != declared or saved != configuration:
            conn.execute(update(agents).where(agents.c.key == spec.key)
                         .values(configuration=configuration, updated_at=now, **declared))
            result.updated.append(spec.key)
    return result
