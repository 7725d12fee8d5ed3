"""Orchestration rules: which agent the relay runs when an event happens.

A new installation gets each agent's default subscriptions (`AgentSpec.subscribes`, written by
`app.agents.definitions.sync_definitions`); admins enable, disable, add and
delete them. Every change is audited. The relay reads the rules through `events.subscribers`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.transactions import transactional
from app.agents.registry import spec_for_key, spec_of
from app.agents.service import list_agents
from app.audit import Actor, record
from app.errors import ValidationError
from app.extensions import db
from app.models import AgentDefinition, OrchestrationRule

# Lower-case words joined by one dot, e.g. invoice.paid or payment.retry_scheduled.
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
EVENT_TYPE_MAX = 64


def agent_name(key: str) -> str:
    spec = spec_for_key(key)
    return spec.name if spec else key


@dataclass
class RuleRow:
    rule: OrchestrationRule
    agent: AgentDefinition | None

    @property
    def agent_name(self) -> str:
        return self.agent.name if self.agent is not None else agent_name(self.rule.agent_key)

    @property
    def agent_enabled(self) -> bool:
        return self.agent is not None and self.agent.enabled and spec_of(self.agent) is not None

    @property
    def active(self) -> bool:
        """Whether the relay runs the agent on this event now (rule and agent both enabled)."""
        return self.rule.enabled and self.agent_enabled

    @property
    def declared(self) -> bool:
        """Whether the agent lists the event among its trigger events (others it may ignore)."""
        return self.agent is not None and self.rule.event_type in (self.agent.trigger_events or [])


def takes_events(agent: AgentDefinition) -> bool:
    spec = spec_of(agent)
    return spec is not None and spec.on_event is not None


def event_agents() -> list[AgentDefinition]:
    """The agents a rule can run (built-in and custom ones that handle events)."""
    return [a for a in list_agents() if takes_events(a)]


def list_rules() -> list[RuleRow]:
    """Every rule with its agent, by event type, then in the order the relay runs them."""
    rows = db.session.execute(
        select(OrchestrationRule, AgentDefinition)
        .outerjoin(AgentDefinition, AgentDefinition.key == OrchestrationRule.agent_key)
        .order_by(OrchestrationRule.event_type, OrchestrationRule.id)
    )
    return [RuleRow(rule, agent) for rule, agent in rows]


def _audit(action: str, rule: OrchestrationRule, actor: Actor) -> None:
    record(f"orchestration.rule_{action}", "orchestration_rule", rule.id, actor, event_type=rule.event_type,
           agent=rule.agent_key)


@transactional
def set_rule_enabled(rule: OrchestrationRule, enabled: bool, actor: Actor) -> bool:
    """Enable or disable a rule; False when it already was (nothing changed, nothing audited)."""
    if rule.enabled == enabled:
        return False
    rule.enabled = enabled
    db.session.flush()
    _audit("enabled" if enabled else "disabled", rule, actor)
    return True


def check_event_type(text: str) -> str:
    """The event type as it is stored, or ValueError saying what is wrong."""
    value = (text or "").strip()
    if not value:
        raise ValueError("event type is required, e.g. invoice.paid")
    if len(value) > EVENT_TYPE_MAX:
        raise ValueError(f"at most {EVENT_TYPE_MAX} characters (this has {len(value)})")
    if not EVENT_TYPE.fullmatch(value):
        raise ValueError(f"{value!r} is not an event type: lower-case words joined by a dot, e.g. invoice.paid")
    return value


@transactional
def add_rule(event_type: str, agent_key: str, actor: Actor) -> OrchestrationRule:
    """A new, enabled rule; ValidationError (field → message) for a bad event type, agent or a duplicate."""
    errors: dict[str, str] = {}
    try:
        event_type = check_event_type(event_type)
    except ValueError as error:
        errors["event_type"] = str(error)
    agent_key = (agent_key or "").strip()
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == agent_key))
    if agent is None or not takes_events(agent):
        errors["agent_key"] = f"choose one of the agents: {', '.join(a.key for a in event_agents())}"
    if errors:
        raise ValidationError(errors)
    duplicate = _duplicate_error(event_type, agent)
    if db.session.scalar(select(OrchestrationRule.id).where(OrchestrationRule.event_type == event_type,
                                                            OrchestrationRule.agent_key == agent_key)):
        raise ValidationError({"form": duplicate})
    savepoint = db.session.begin_nested()
    try:
        rule = OrchestrationRule(event_type=event_type, agent_key=agent_key, enabled=True)
        db.session.add(rule)
        db.session.flush()
        savepoint.commit()
    except IntegrityError:  # another admin added it meanwhile
        savepoint.rollback()
        raise ValidationError({"form": duplicate}) from None
    _audit("added", rule, actor)
    return rule


def _duplicate_error(event_type: str, agent: AgentDefinition) -> str:
    return f"a rule already runs the {agent.name} on {event_type}: enable it in the table instead"


@transactional
def delete_rule(rule: OrchestrationRule, actor: Actor) -> None:
    """Remove a rule; the relay no longer runs its agent on its event."""
    _audit("deleted", rule, actor)
    db.session.delete(rule)
    db.session.flush()
