"""Agent definitions: listing them and changing their configuration (validated, audited)."""
from __future__ import annotations

from typing import Any

from rq import Retry
from sqlalchemy import select

from app.agents.registry import INVOICE_DELIVERY, get_spec
from app.audit import Actor, record
from app.extensions import db
from app.models import AgentDefinition
from app.queues import AGENT_EVENT_JOB, RESEND_JOB, agent_event_job_id, launch_task, resend_job_id


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


# ------------------------------------------------------------------ enqueueing an agent's jobs
def retry_policy(agent_key: str) -> Retry | None:
    """RQ Retry from the agent's retry setting (minutes), e.g. 1,5,30 → three retries with backoff."""
    spec = get_spec(agent_key)
    agent = get_agent(agent_key)
    if spec.retry_setting is None or agent is None:
        return None
    minutes = [int(m) for m in str(current_configuration(agent)[spec.retry_setting]).split(",") if m.strip()]
    return Retry(max=len(minutes), interval=[m * 60 for m in minutes]) if minutes else None


def enqueue_agent_event(agent_key: str, event_id: int, retry: Retry | None, *, pipeline: Any = None) -> str:
    """Enqueue the agent's job for the event on the agent's queue, with `retry` (the agent's
    `retry_policy()`); with `pipeline`, the job is enqueued when the caller executes that pipeline."""
    spec = get_spec(agent_key)
    return launch_task(AGENT_EVENT_JOB, agent_key, event_id, queue=spec.queue, job_id=agent_event_job_id(agent_key, event_id),
                       description=f"{spec.name} on event {event_id}", retry=retry, pipeline=pipeline,
                       timeout=spec.job_timeout)


def enqueue_resend(invoice_id: int, delivery_id: int, *, pipeline: Any = None) -> str:
    return launch_task(RESEND_JOB, invoice_id, delivery_id, job_id=resend_job_id(delivery_id),
                       retry=retry_policy(INVOICE_DELIVERY.key), timeout=INVOICE_DELIVERY.job_timeout,
                       description=f"resend invoice {invoice_id}", pipeline=pipeline)
