"""The agent registry: each agent's key, triggers and declared settings, in one place.

Rows in `agent_definitions` are created by migrations; this registry says what their
configuration may contain and validates changes to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from app.records.validation import ValidationError


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
    # The RQ queue its jobs run on, and "module:function" handling the events it subscribes to.
    queue: str = "default"
    handler: str | None = None
    # A "days"-type setting holding the minutes after which a failed job is retried (RQ Retry).
    retry_setting: str | None = None
    # Seconds one of its jobs may run before RQ stops it (None: RQ's default, 180).
    job_timeout: int | None = None

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
        Setting("chunk_size", "Contracts per chunk", "int", 2000,
                "Contracts billed per transaction and per worker job; larger is faster, smaller isolates more.", 10, 10000),
        Setting("as_of_offset_days", "As-of offset (days)", "int", 0,
                "Bill periods starting up to this many days after today (negative: before).", -31, 31),
    ),
    queue="billing",
    handler="app.agents.billing_run:on_event",
)

# Placeholders the delivery e-mail templates may use.
# payment_reference: the invoice's ISO 11649 RF reference in groups of 4, as printed on the PDF
MAIL_PLACEHOLDERS = ("number", "entity_name", "customer_name", "total", "due_date", "period_start", "period_end",
                     "payment_reference")


def check_mail_template(template: str) -> None:
    """Refuse templates with unknown {placeholders} or broken braces, naming the problem."""
    import string

    try:
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise ValueError(f"the template has a stray brace: {error}") from None
    unknown = [n for n in names if n not in MAIL_PLACEHOLDERS]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}: use {', '.join('{' + p + '}' for p in MAIL_PLACEHOLDERS)}")


def check_subject_template(template: str) -> None:
    """A subject is one header line: no line breaks or other control characters (they would break the
    e-mail's headers), and the placeholders of check_mail_template."""
    from app.records.validation import FieldError, one_line

    try:
        one_line(template, "the subject")
    except FieldError as error:
        raise ValueError(str(error)) from None
    check_mail_template(template)


INVOICE_DELIVERY = AgentSpec(
    key="invoice_delivery",
    name="Invoice Delivery Agent",
    description=(
        "Renders each issued invoice as a PDF/A-3 with an embedded EN 16931 e-invoice (Factur-X) and "
        "e-mails it to the customer. Sends once per invoice; SMTP failures are retried with backoff."
    ),
    trigger_events=("invoice.issued", "credit_note.issued", "manual.trigger"),
    settings=(
        Setting("subject_template", "E-mail subject", "text", "Invoice {number} from {entity_name}",
                "Placeholders: " + ", ".join("{" + p + "}" for p in MAIL_PLACEHOLDERS), validator=check_subject_template),
        Setting("body_template", "E-mail text", "text",
                "Dear {customer_name},\n\nplease find attached invoice {number} for the period {period_start} to "
                "{period_end}, total {total}, due on {due_date}.\n\nKind regards,\n{entity_name}",
                "Placeholders as in the subject.", validator=check_mail_template),
        Setting("retry_minutes", "Retry after (minutes)", "days", "1,5,30",
                "When sending fails, try again after these many minutes; then report the failure.", maximum=1440),
    ),
    queue="delivery",
    handler="app.agents.invoice_delivery:on_event",
    retry_setting="retry_minutes",
    job_timeout=180,
)

PAYMENT_COLLECTION = AgentSpec(
    key="payment_collection",
    name="Payment Collection Agent",
    description=(
        "Reads the customer's payment method: manual invoices wait for a payment to be recorded; SEPA direct "
        "debit adds the invoice to the legal entity's open pain.008 batch. A returned debit is retried on the "
        "configured days after the failure, then the invoice is flagged and finance is notified."
    ),
    trigger_events=("invoice.issued", "payment.retry_scheduled", "manual.trigger"),
    settings=(
        Setting("retry_days", "Retry on days after a failure", "days", "3,7,14",
                "A returned debit is presented again on these days after the (first) failure.", maximum=90),
        Setting("collection_lead_days", "Collection lead time (days)", "int", 2,
                "Requested collection date = the day the batch is closed + this many days.", 1, 30),
    ),
    queue="collection",
    handler="app.agents.payment_collection:on_event",
)

RECONCILIATION = AgentSpec(
    key="reconciliation",
    name="Reconciliation Agent",
    description=(
        "Applies the money on imported bank statements (camt.053, MT940, CSV) to open invoices: by the "
        "invoice's RF creditor reference, then by an invoice number in the remittance text, then by amount and "
        "payer. A short payment leaves the rest due, an over-payment becomes customer credit, a returned SEPA "
        "debit re-opens its invoice; what is not certain waits in Records > Bank for an accountant."
    ),
    trigger_events=("bank_statement.imported", "manual.trigger"),
    settings=(
        Setting("match_by_payer", "Match by amount and payer", "bool", True,
                "With no reference in the transfer: apply it when its amount is exactly what one open invoice of "
                "the payer (known by IBAN, or by name) is due, or all of them together."),
        Setting("overpayment_to_credit", "Over-payments become customer credit", "bool", True,
                "Money beyond what the referenced invoices are due is kept as the customer's credit (used by the "
                "next billing run); off: the rest waits in the unmatched queue."),
    ),
    queue="default",
    handler="app.agents.reconciliation:on_event",
    job_timeout=600,
)

AGENTS: dict[str, AgentSpec] = {spec.key: spec for spec in (BILLING_RUN, INVOICE_DELIVERY, PAYMENT_COLLECTION,
                                                            RECONCILIATION)}

# Which agents run when an event happens, as the migrations create them (admins can change them).
DEFAULT_RULES = (
    ("billing.run_requested", "billing_run"),
    ("invoice.issued", "invoice_delivery"),
    ("invoice.issued", "payment_collection"),
    ("payment.retry_scheduled", "payment_collection"),
    ("credit_note.issued", "invoice_delivery"),  # a credit note is delivered, never collected
    ("bank_statement.imported", "reconciliation"),
)


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
