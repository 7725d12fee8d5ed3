"""Agent definitions: listing them, changing their configuration (validated, audited), enqueueing their jobs."""
from __future__ import annotations

from typing import Any

from rq import Retry
from sqlalchemy import or_, select

from app.transactions import transactional
from app.agents.base import AgentSpec
from app.agents.versions import save_version
from app.agents.registry import builtin_specs, spec_of
from app.agents.settings import agent_row, configuration_of, retry_policy as _retry_policy
from app.audit import Actor, record
from app.extensions import db
from app.models import AgentDefinition
from app.queues import AGENT_EVENT_JOB, DELIVERY_TIMEOUT, RESEND_JOB, agent_event_job_id, launch_task, resend_job_id


# What the audit, the versions and messages show for a secret setting's value.
MASK = "••••••"


def masked(spec: AgentSpec | None, configuration: dict[str, Any]) -> dict[str, Any]:
    """The configuration with secret settings' values hidden (for CLI output, versions, the audit)."""
    secrets = {s.name for s in spec.settings if s.secret} if spec else set()
    return {name: (MASK if name in secrets and value else value) for name, value in configuration.items()}


def list_agents(entity_id: int | None = None) -> list[AgentDefinition]:
    """Built-in agents in their registry order, then the custom agents of `entity_id` (all of them when None
    and every entity is meant, e.g. the CLI without --entity), by name."""
    order = {spec.key: n for n, spec in enumerate(builtin_specs())}
    query = select(AgentDefinition)
    if entity_id is not None:
        query = query.where(or_(AgentDefinition.custom.is_(False), AgentDefinition.legal_entity_id == entity_id))
    rows = list(db.session.scalars(query))
    return sorted(rows, key=lambda a: (a.custom, order.get(a.key, len(order)), a.name.lower(), a.id))


def get_agent(key: str) -> AgentDefinition | None:
    return agent_row(key)


def visible_to(agent: AgentDefinition, entity_id: int | None) -> bool:
    """A custom agent works for one legal entity: it is seen only there."""
    return not agent.custom or agent.legal_entity_id == entity_id


def current_configuration(agent: AgentDefinition) -> dict[str, Any]:
    return configuration_of(agent)


def spec_or_error(agent: AgentDefinition) -> AgentSpec:
    spec = spec_of(agent)
    if spec is None:
        raise LookupError(f"agent {agent.key!r}: its module is not installed")
    return spec


@transactional
def update_configuration(agent: AgentDefinition, submitted: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Validate and save a full configuration; raises ValidationError (per field) and changes nothing then."""
    old = current_configuration(agent)
    spec = spec_or_error(agent)
    new = spec.validate_configuration(submitted)
    secrets = {s.name for s in spec.settings if s.secret}
    changes = {name: ({"old": MASK, "new": MASK} if name in secrets else {"old": old.get(name), "new": value})
               for name, value in new.items() if old.get(name) != value}
    if changes:
        agent.configuration = new
        record("agent.configured", "agent", agent.id, actor, agent=agent.key, changes=changes,
               legal_entity_id=agent.legal_entity_id)
        _new_version(agent, actor, "settings: " + ", ".join(changes))
    return changes


@transactional
def set_enabled(agent: AgentDefinition, enabled: bool, actor: Actor) -> bool:
    if agent.enabled == enabled:
        return False
    agent.enabled = enabled
    record("agent.enabled" if enabled else "agent.disabled", "agent", agent.id, actor, agent=agent.key,
           legal_entity_id=agent.legal_entity_id)
    _new_version(agent, actor, "enabled" if enabled else "disabled")
    return True


def _new_version(agent: AgentDefinition, actor: Actor, summary: str) -> None:
    """A custom agent's change is a new version (built-in agents' changes are in the audit only)."""
    if agent.custom:
        agent.version += 1
        save_version(agent, actor, summary)


# ------------------------------------------------------------------ enqueueing an agent's jobs
def retry_policy(agent_key: str) -> Retry | None:
    """RQ Retry from the agent's retry setting (minutes), e.g. 1,5,30 → three retries with backoff."""
    agent = get_agent(agent_key)
    return _retry_policy(agent) if agent is not None else None


def enqueue_agent_event(agent_key: str, event_id: int, retry: Retry | None, *, pipeline: Any = None) -> str:
    """Enqueue the agent's job for the event on the agent's queue, with `retry` (the agent's
    `retry_policy()`); with `pipeline`, the job is enqueued when the caller executes that pipeline."""
    agent = get_agent(agent_key)
    spec = spec_or_error(agent) if agent is not None else None
    if spec is None:
        raise LookupError(f"unknown agent {agent_key!r}")
    return launch_task(AGENT_EVENT_JOB, agent_key, event_id, queue=spec.queue,
                       job_id=agent_event_job_id(agent_key, event_id),
                       description=f"{agent.name if agent.custom else spec.name} on event {event_id}", retry=retry,
                       pipeline=pipeline, timeout=spec.job_timeout)


def enqueue_resend(invoice_id: int, delivery_id: int, *, pipeline: Any = None) -> str:
    return launch_task(RESEND_JOB, invoice_id, delivery_id, job_id=resend_job_id(delivery_id),
                       retry=retry_policy("invoice_delivery"), timeout=DELIVERY_TIMEOUT,
                       description=f"resend invoice {invoice_id}", pipeline=pipeline)
