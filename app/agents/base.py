"""What an agent is: its declared settings and its spec (key, name, mode, triggers, handlers, queue, timeout, retry).

Every agent is one module that declares `SPEC = AgentSpec(...)`: the built-in ones in app/agents/builtin, the
templates custom agents are made from in app/agents/templates. app/agents/registry.py finds them. This module
imports nothing of the app but the error types, so anything may import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Callable

from app.records.validation import ValidationError

if TYPE_CHECKING:  # (types only: the models import nothing of the agents)
    from app.audit import Actor
    from app.models import AgentDefinition, Event, LegalEntity

EXECUTION_MODES = {"code": "Code", "llm": "LLM"}


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    type: str  # "bool" | "int" | "text" | "days" (a comma-separated list of increasing whole numbers)
    default: Any
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    validator: Callable[[str], None] | None = None
    # A secret (a signing key): never shown again once saved; an empty field on the form keeps it.
    secret: bool = False

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
            if not str(raw).strip():
                raise ValueError(f"enter a whole number, e.g. {self.default}")
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number: enter one with the digits 0-9, e.g. "
                                 f"{self.default}") from None
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{value} is below the minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{value} is above the maximum {self.maximum}")
            return value
        if self.type == "text":
            value = str(raw)
            if self.validator is not None:
                self.validator(value)
            return value
        if self.type == "days":
            parts = [p.strip() for p in str(raw).split(",") if p.strip()]
            if not parts:
                raise ValueError(f"enter whole numbers separated by commas, increasing, e.g. {self.default}")
            try:
                numbers = [int(p) for p in parts]
            except ValueError:
                raise ValueError(f"{raw!r} is not a list of whole numbers like 3,7,14") from None
            if not numbers or any(n <= 0 for n in numbers) or numbers != sorted(set(numbers)):
                raise ValueError(f"{raw!r} must be increasing positive numbers, e.g. 3,7,14")
            if self.maximum is not None and numbers[-1] > self.maximum:
                raise ValueError(f"{numbers[-1]} is above the maximum {self.maximum}")
            return ",".join(str(n) for n in numbers)
        raise AssertionError(f"unknown setting type {self.type}")


@dataclass(frozen=True)
class AgentSpec:
    key: str
    name: str
    description: str
    trigger_events: tuple[str, ...]
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    execution_mode: str = "code"
    # The RQ queue its jobs run on; the function handling the events routed to it (None: it takes no events).
    queue: str = "default"
    on_event: Callable[["Event"], Any] | None = None
    # What a run for one legal entity does (Run button, schedule, `flask agents run`; None: no runs of its own).
    run: Callable[["RunRequest"], "RunOutcome"] | None = None
    # The events the agent is subscribed to on a new installation (Agents > Orchestration: admins change them).
    subscribes: tuple[str, ...] = ()
    # Its runs start billing runs: the Run button previews the run and asks to confirm, the Runs tab lists them.
    bills: bool = False
    # A template for custom agents (app/agents/templates), not an agent of its own.
    template: bool = False
    # An extra panel on the agent's Overview tab: a Jinja template and a function giving its context from the
    # agent row (e.g. a webhook's delivery log).
    overview_panel: str | None = None
    overview_context: Callable[["AgentDefinition"], dict[str, Any]] | None = None
    # A "days"-type setting holding the minutes after which a failed job is retried (RQ Retry).
    retry_setting: str | None = None
    # Seconds one of its jobs may run before RQ stops it (None: RQ's default, 180).
    job_timeout: int | None = None

    @property
    def mode_label(self) -> str:
        return EXECUTION_MODES.get(self.execution_mode, self.execution_mode)

    @property
    def schedulable(self) -> bool:
        return self.run is not None and "schedule.triggered" in self.trigger_events

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




@dataclass
class RunRequest:
    """One run of an agent for a legal entity, as its `run` function gets it: plain values and the rows it
    works on. `configuration` is the agent's current settings (a custom agent's own)."""

    agent: "AgentDefinition"
    entity: "LegalEntity"
    actor: "Actor"
    trigger: str  # manual | schedule | cli | test
    configuration: dict[str, Any]
    agent_run_id: int | None = None
    as_of: date | None = None
    slot: datetime | None = None
    # What started it, kept on what it starts (a billing run's trigger_ref): "schedule:<id>:<slot>", "agent_run:<id>"
    trigger_ref: str = ""

    @property
    def test(self) -> bool:
        """A test run: show what the agent would do, or send only to the person testing; nothing is recorded
        as done."""
        return self.trigger == "test"


@dataclass
class RunOutcome:
    """What a run did, in words for the Runs tab; `ok` False: it could not do its work (refused, failed)."""

    summary: str
    ok: bool = True
    billing_run_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
