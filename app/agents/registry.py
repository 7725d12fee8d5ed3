"""The agent registry: finds every agent module and answers "what is agent X".

An agent is one module declaring `SPEC = AgentSpec(...)` (app/agents/base.py): the built-in agents in
app/agents/builtin, the templates custom agents are made from in app/agents/templates. Adding an agent is
adding a module: its definition row (`sync_definitions`, after every `flask db upgrade`), its default
subscriptions, its pages, schedules, Runs tab and CLI follow from the spec.

The modules are imported on first use, not when this module is imported: agent modules call services, and
services may ask the registry about an agent (through app/agents/settings.py) while they load.
"""
from __future__ import annotations

import json
import pkgutil
from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from app.agents.base import AgentSpec

if TYPE_CHECKING:
    from app.models import AgentDefinition

PACKAGES = ("app.agents.builtin", "app.agents.templates")


class _Specs(Mapping):
    """Specs by key, from the modules of one package, loaded on first use (sorted by module name)."""

    def __init__(self, package: str, template: bool):
        self.package, self.template = package, template
        self._specs: dict[str, AgentSpec] | None = None

    def _load(self) -> dict[str, AgentSpec]:
        if self._specs is None:
            specs: dict[str, AgentSpec] = {}
            for module in sorted(pkgutil.iter_modules(import_module(self.package).__path__), key=lambda m: m.name):
                spec = getattr(import_module(f"{self.package}.{module.name}"), "SPEC", None)
                if spec is None:
                    continue
                if spec.template != self.template or spec.key != module.name or spec.key in specs:
                    raise RuntimeError(f"{self.package}.{module.name}: SPEC.key must be the module's name and "
                                       f"template={self.template}")
                specs[spec.key] = spec
            self._specs = specs
        return self._specs

    def __getitem__(self, key: str) -> AgentSpec:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


# The built-in agents, in the order they appear (Definitions, CLI), and the custom agents' templates.
AGENTS: Mapping[str, AgentSpec] = _Specs("app.agents.builtin", template=False)
TEMPLATES: Mapping[str, AgentSpec] = _Specs("app.agents.templates", template=True)

ORDER = ("billing_run", "invoice_delivery", "payment_collection", "reconciliation")


def builtin_specs() -> list[AgentSpec]:
    """Built-in agents: the seed's three first, in the walkthrough's order, then the others by key."""
    return sorted(AGENTS.values(), key=lambda s: (ORDER.index(s.key) if s.key in ORDER else len(ORDER), s.key))


def get_spec(key: str) -> AgentSpec:
    """A built-in agent's spec by key."""
    try:
        return AGENTS[key]
    except KeyError:
        raise KeyError(f"unknown agent {key!r}: use one of {', '.join(AGENTS)}") from None


def get_template(key: str) -> AgentSpec:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise KeyError(f"unknown template {key!r}: use one of {', '.join(TEMPLATES)}") from None


def spec_of(agent: AgentDefinition) -> AgentSpec | None:
    """What an agent row does: a built-in agent's own spec, a custom agent's template (None: a row whose module
    is gone, e.g. after a downgrade of the code)."""
    if agent.custom:
        return TEMPLATES.get(agent.template or "")
    return AGENTS.get(agent.key)


def spec_for_key(key: str) -> AgentSpec | None:
    """The spec of the agent with this key, built-in or custom (custom ones are looked up in the database)."""
    if key in AGENTS:
        return AGENTS[key]
    from app.agents.service import get_agent  # (the service imports this module)

    agent = get_agent(key)
    return spec_of(agent) if agent is not None else None


def handler_for(key: str):
    """The function that handles events for agent `key` (built-in or custom)."""
    spec = spec_for_key(key)
    if spec is None:
        raise LookupError(f"unknown agent {key!r}")
    if spec.on_event is None:
        raise LookupError(f"the {spec.name} does not handle events")
    return spec.on_event


def default_rules() -> tuple[tuple[str, str], ...]:
    """(event type, agent key) for every built-in agent's default subscriptions: the orchestration rules of a
    new installation (admins change them under Agents > Orchestration)."""
    return tuple((event, spec.key) for spec in builtin_specs() for event in spec.subscribes)


def default_definitions() -> list[dict[str, Any]]:
    """The built-in agents' rows as their specs declare them (`sync_definitions` writes them; tests compare)."""
    return [
        {
            "key": spec.key,
            "name": spec.name,
            "description": spec.description,
            "execution_mode": spec.execution_mode,
            "trigger_events": list(spec.trigger_events),
            "configuration": spec.defaults(),
            "configuration_json": json.dumps(spec.defaults()),
        }
        for spec in builtin_specs()
    ]
