"""Custom agents: made in the app (Agents > Create Agent) or the CLI from a template, for one legal entity.

An admin picks a template (app/agents/templates), names the agent, fills its settings and chooses its
triggers: a schedule (a cron expression read in the entity's time zone; a schedule row like any other),
events (orchestration rules to the agent), and always a manual Run. Every change is a new version
(app/agents/versions.py) and an audit entry. A custom agent starts disabled unless asked otherwise: test it
(a test run sends to nobody but the tester), then enable it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.transactions import transactional
from app.agents.base import AgentSpec
from app.agents.registry import TEMPLATES, get_template
from app.agents.service import masked
from app.agents.versions import save_version
from app.audit import Actor, record
from app.errors import ScheduleError
from app.extensions import db
from app.models import AgentDefinition, LegalEntity, OrchestrationRule, ScheduledJob
from app.records.validation import FieldError, ValidationError, column_length, one_line
from app.schedules.cron import Preset
from app.schedules.service import ScheduleInput, create_schedule, delete_schedule, schedule_cron, update_schedule
from app.wording import EVENT_WORDS

NAME_MAX = column_length(AgentDefinition.name)
KEY_MAX = column_length(AgentDefinition.key)
# Triggers every agent has; the rest are events an admin may choose (where the template takes events).
BUILT_IN_TRIGGERS = ("schedule.triggered", "manual.trigger")


@dataclass
class CustomAgentInput:
    """What the Create Agent form and `flask agents create` submit."""

    template: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    cron: str = ""  # empty: no schedule
    events: tuple[str, ...] = ()  # event types that run it (templates that take events)
    enabled: bool = False


def templates() -> list[AgentSpec]:
    return sorted(TEMPLATES.values(), key=lambda s: s.name)


def choosable_events(spec: AgentSpec) -> list[str]:
    """The events a custom agent of this template may be run on (none when it takes no events)."""
    if spec.on_event is None:
        return []
    declared = [e for e in spec.trigger_events if e not in BUILT_IN_TRIGGERS]
    return declared or [e for e in EVENT_WORDS if e not in BUILT_IN_TRIGGERS]


def _key_for(entity: LegalEntity, name: str) -> str:
    """custom_<entity>_<name as lower-case words>, made unique with a number."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "agent"
    base = f"custom_{entity.code.lower()}_{slug}"[:KEY_MAX - 4]
    key, n = base, 1
    while db.session.scalar(select(AgentDefinition.id).where(AgentDefinition.key == key)) is not None:
        n += 1
        key = f"{base}_{n}"
    return key


def _check(spec: AgentSpec, data: CustomAgentInput, entity: LegalEntity,
           agent: AgentDefinition | None = None) -> tuple[dict[str, Any], list[str]]:
    """(settings, trigger events) or ValidationError naming every bad field; nothing is written."""
    errors: dict[str, str] = {}
    name = data.name.strip()
    try:
        one_line(name, "the name")
        if not name:
            raise FieldError("give the agent a name, e.g. Weekly overdue report")
        if len(name) > NAME_MAX:
            raise FieldError(f"at most {NAME_MAX} characters (this has {len(name)})")
        clash = db.session.scalar(select(AgentDefinition.id).where(
            AgentDefinition.name == name, AgentDefinition.legal_entity_id == entity.id,
            AgentDefinition.id != (agent.id if agent else -1)))
        if clash:
            raise FieldError(f"{entity.code} already has an agent named “{name}”: choose another name")
    except FieldError as error:
        errors["name"] = str(error)
    settings: dict[str, Any] = {}
    try:
        settings = spec.validate_configuration(data.settings)
    except ValidationError as error:
        errors.update({f"settings.{k}": v for k, v in error.errors.items()})
    allowed = choosable_events(spec)
    unknown = [e for e in data.events if e not in allowed]
    if unknown:
        errors["events"] = (f"the {spec.name} template cannot run on {', '.join(unknown)}"
                            + (f": choose from {', '.join(allowed)}" if allowed else ": it takes no events"))
    if data.cron.strip():
        try:
            schedule_cron(Preset(kind="cron", cron=data.cron.strip()))
        except ScheduleError as error:
            errors["cron"] = str(error)
    if errors:
        raise ValidationError(errors)
    events = list(dict.fromkeys(data.events))
    triggers = ["manual.trigger", *(["schedule.triggered"] if data.cron.strip() else []), *events]
    return settings, triggers


@transactional
def create_custom_agent(entity: LegalEntity, data: CustomAgentInput, actor: Actor) -> AgentDefinition:
    """A new custom agent (version 1) with its schedule and rules; ValidationError changes nothing.
    A unit of work; the caller then updates rq-scheduler when it has a schedule."""
    try:
        spec = get_template(data.template)
    except KeyError as error:
        raise ValidationError({"template": str(error.args[0])}) from None
    settings, triggers = _check(spec, data, entity)
    agent = AgentDefinition(key=_key_for(entity, data.name.strip()), name=data.name.strip(),
                            description=spec.description, execution_mode=spec.execution_mode, trigger_events=triggers,
                            enabled=data.enabled, configuration=settings, custom=True, template=spec.key,
                            legal_entity_id=entity.id, version=1)
    db.session.add(agent)
    db.session.flush()
    _sync_triggers(agent, entity, data, actor)
    save_version(agent, actor, f"created from the {spec.name} template")
    record("agent.created", "agent", agent.id, actor, legal_entity_id=entity.id, agent=agent.key,
           template=spec.key, name=agent.name, triggers=triggers, enabled=agent.enabled)
    return agent


@transactional
def update_custom_agent(agent: AgentDefinition, data: CustomAgentInput, actor: Actor) -> list[str]:
    """Save name, settings and triggers as a new version; returns what changed (empty: nothing, no version)."""
    spec = get_template(agent.template)
    entity = agent.legal_entity
    settings, triggers = _check(spec, data, entity, agent)
    before = {"name": agent.name, "settings": dict(agent.configuration or {}), "cron": schedule_of(agent),
              "events": events_of(agent)}
    after = {"name": data.name.strip(), "settings": settings, "cron": data.cron.strip() or None,
             "events": list(dict.fromkeys(data.events))}
    changed = [k for k in before if before[k] != after[k]]
    if not changed:
        return []
    agent.name, agent.configuration, agent.trigger_events = after["name"], settings, triggers
    _sync_triggers(agent, entity, data, actor)
    agent.version += 1
    save_version(agent, actor, "changed: " + ", ".join(changed))
    record("agent.changed", "agent", agent.id, actor, legal_entity_id=entity.id, agent=agent.key,
           version=agent.version, changes={k: {"old": _shown(spec, before[k]), "new": _shown(spec, after[k])}
                                           for k in changed})
    return changed


def _shown(spec: AgentSpec, value: Any) -> Any:
    return masked(spec, value) if isinstance(value, dict) else value


def schedule_of(agent: AgentDefinition) -> str | None:
    schedule = _schedule(agent)
    return schedule.cron if schedule is not None else None


def events_of(agent: AgentDefinition) -> list[str]:
    return list(db.session.scalars(select(OrchestrationRule.event_type).where(OrchestrationRule.agent_key == agent.key)
                                   .order_by(OrchestrationRule.id)))


def _schedule(agent: AgentDefinition) -> ScheduledJob | None:
    return db.session.scalar(select(ScheduledJob).where(ScheduledJob.agent_id == agent.id)
                             .order_by(ScheduledJob.id).limit(1))


def _sync_triggers(agent: AgentDefinition, entity: LegalEntity, data: CustomAgentInput, actor: Actor) -> None:
    """The agent's one schedule and its event rules, as submitted."""
    cron = data.cron.strip()
    schedule = _schedule(agent)
    if cron and schedule is None:
        create_schedule(entity, ScheduleInput(agent.key, agent.name, Preset(kind="cron", cron=cron)), actor)
    elif cron and schedule is not None and schedule.cron != cron:
        update_schedule(schedule, ScheduleInput(agent.key, agent.name, Preset(kind="cron", cron=cron)), actor)
    elif not cron and schedule is not None:
        delete_schedule(schedule, actor)
    wanted = list(dict.fromkeys(data.events))
    existing = {r.event_type: r for r in db.session.scalars(
        select(OrchestrationRule).where(OrchestrationRule.agent_key == agent.key))}
    for event_type, rule in existing.items():
        if event_type not in wanted:
            db.session.delete(rule)
    for event_type in wanted:
        if event_type not in existing:
            db.session.add(OrchestrationRule(event_type=event_type, agent_key=agent.key, enabled=True))
    db.session.flush()
