"""The agent registry: each agent's key, triggers and declared settings, in one place.

Rows in `agent_definitions` are created by migrations; this registry says what their
configuration may contain and validates changes to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.records.validation import ValidationError


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    type: str  # "bool" | "int"
    default: Any
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: Any) -> Any:
        """Turn a submitted value (form text, JSON value) into this setting's type, or raise ValueError."""
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"true", "1", "yes", "on", "y"}:
                return True
            if text in {"false", "0", "no", "off", "n", ""}:
                return False
            raise ValueError(f"{raw!r} is not yes or no")
        if self.type == "int":
            if isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not a whole number")
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number") from None
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{value} is below the minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{value} is above the maximum {self.maximum}")
            return value
        raise AssertionError(f"unknown setting type {self.type}")


@dataclass(frozen=True)
class AgentSpec:
    key: str
    name: str
    description: str
    trigger_events: tuple[str, ...]
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    execution_mode: str = "code"
    # The RQ queue its jobs run on, and "module:function" handling the events it subscribes to.
    queue: str = "default"
    handler: str | None = None

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings}

    def validate_configuration(self, submitted: dict[str, Any]) -> dict[str, Any]:
        """A full, typed configuration from submitted values; unknown keys and bad values are refused."""
        errors: dict[str, str] = {}
        known = {s.name: s for s in self.settings}
        for name in submitted:
            if name not in known:
                errors[name] = f"unknown setting (the {self.name} has: {', '.join(known)})"
        clean: dict[str, Any] = {}
        for setting in self.settings:
            raw = submitted.get(setting.name, False if setting.type == "bool" else setting.default)
            try:
                clean[setting.name] = setting.parse(raw)
            except ValueError as error:
                errors[setting.name] = str(error)
        if errors:
            raise ValidationError(errors)
        return clean


BILLING_RUN = AgentSpec(
    key="billing_run",
    name="Billing Run Agent",
    description=(
        "Finds active recurring contracts due for billing, generates AR invoices for every due period "
        "that has none yet (catching up missed periods), and emits events for invoice delivery and "
        "payment collection. Runs in Code mode: pure Python, no LLM calls, zero API cost."
    ),
    trigger_events=("schedule.triggered", "manual.trigger", "billing.run_requested"),
    settings=(
        Setting("auto_post", "Post invoices at once", "bool", True,
                "Give invoices their numbers and issue them immediately; off keeps them as drafts for review."),
        Setting("payment_terms_days", "Default payment terms (days)", "int", 14,
                "Used when neither the contract nor the legal entity sets payment terms.", 0, 365),
        Setting("chunk_size", "Contracts per chunk", "int", 500,
                "Contracts billed per transaction and per worker job; larger is faster, smaller isolates more.", 10, 10000),
        Setting("as_of_offset_days", "As-of offset (days)", "int", 0,
                "Bill periods starting up to this many days after today (negative: before).", -31, 31),
    ),
    queue="billing",
    handler="app.agents.billing_run:on_event",
)

AGENTS: dict[str, AgentSpec] = {spec.key: spec for spec in (BILLING_RUN,)}


def get_spec(key: str) -> AgentSpec:
    try:
        return AGENTS[key]
    except KeyError:
        raise KeyError(f"unknown agent {key!r}: use one of {', '.join(AGENTS)}") from None


def handler_for(key: str):
    """The function that handles events for agent `key`."""
    from importlib import import_module

    spec = get_spec(key)
    if spec.handler is None:
        raise LookupError(f"the {spec.name} does not handle events")
    module, _, function = spec.handler.partition(":")
    return getattr(import_module(module), function)


def default_definitions() -> list[dict[str, Any]]:
    """The rows the migrations create, as the registry declares them (tests compare the two)."""
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
        for spec in AGENTS.values()
    ]
