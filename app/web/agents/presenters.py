"""What the agent pages show and read, apart from the views: catalogue rows, settings from a form, the custom
agent form's values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from app.agents.base import AgentSpec
from app.agents.custom import CustomAgentInput, choosable_events, events_of, schedule_of
from app.agents.registry import spec_of
from app.agents.service import current_configuration
from app.models import AgentDefinition


@dataclass
class CatalogueRow:
    """One agent in Agents > Definitions."""

    agent: AgentDefinition
    spec: AgentSpec | None

    @property
    def status(self) -> str:
        """enabled | disabled | missing (its module is not installed: it cannot run)."""
        if self.spec is None:
            return "missing"
        return "enabled" if self.agent.enabled else "disabled"

    @property
    def kind(self) -> str:
        if not self.agent.custom:
            return "Built-in"
        return f"Custom · {self.spec.name if self.spec else self.agent.template}"


def submitted_settings(spec: AgentSpec, agent: AgentDefinition | None, form: MultiDict) -> dict[str, Any]:
    """The settings a form submits; a secret left empty keeps the saved one (it is never shown again)."""
    saved = current_configuration(agent) if agent is not None else {}
    values: dict[str, Any] = {}
    for setting in spec.settings:
        if setting.type == "bool":
            values[setting.name] = setting.name in form
        elif setting.secret and not form.get(setting.name, "").strip() and saved.get(setting.name):
            values[setting.name] = saved[setting.name]
        elif setting.name in form:
            values[setting.name] = form[setting.name]
    return values


def shown_settings(spec: AgentSpec, values: dict[str, Any]) -> dict[str, Any]:
    """Values to put back into a form: secrets never."""
    return {s.name: ("" if s.secret else values.get(s.name)) for s in spec.settings}


def custom_input(spec: AgentSpec, agent: AgentDefinition | None, form: MultiDict) -> CustomAgentInput:
    return CustomAgentInput(template=spec.key, name=form.get("name", ""),
                            settings=submitted_settings(spec, agent, form), cron=form.get("cron", ""),
                            events=tuple(form.getlist("events")), enabled=False)


def custom_context(agent: AgentDefinition, form: MultiDict | None = None) -> dict[str, Any]:
    """The custom agent's name and triggers for its form (as saved, or as submitted)."""
    spec = spec_of(agent)
    if form is not None:
        return {"custom_values": {"name": form.get("name", ""), "cron": form.get("cron", ""),
                                  "events": form.getlist("events")},
                "choosable_events": choosable_events(spec) if spec else []}
    return {"custom_values": {"name": agent.name, "cron": schedule_of(agent) or "", "events": events_of(agent)},
            "choosable_events": choosable_events(spec) if spec else []}
