"""Webhook (a template): POSTs a signed JSON payload for the events an integrator chooses to their URL, retried with
backoff, with a delivery log of every attempt and its answer (the agent's Overview panel).

Signing, posting and the log are app/agents/webhooks.py; the receiver's side is docs/webhooks.md.
"""
from __future__ import annotations

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.agents.builtin.invoice_delivery import is_final_attempt
from app.agents.webhooks import (check_secret, check_url, delivery_log_context, event_body, payload_body, post,
                                 raise_for)
from app.agents.settings import configuration_of
from app.extensions import db
from app.models import AgentDefinition, Event, LegalEntity
from app.models.types import utcnow

# The events the app emits (app/outbox.py emit) that an integrator may choose.
WEBHOOK_EVENTS = (
    "invoice.issued", "credit_note.issued", "payment.received", "payment.reversed", "payment.retry_scheduled",
    "bank_statement.imported", "billing_run.started", "billing_run.completed", "billing_run.failed",
)
TEST_EVENT = "agent.test"


def on_event(event: Event, agent: AgentDefinition | None = None) -> str | None:
    """Deliver one event of the agent's legal entity (others are not its business: None). A refused attempt
    raises WebhookFailed while RQ will retry, so the job runs again after the agent's backoff."""
    if agent is None or not agent.custom or event.legal_entity_id != agent.legal_entity_id:
        return None
    if not agent.enabled:
        return "not sent: the agent is disabled"
    entity = db.session.get(LegalEntity, event.legal_entity_id)
    key = f"event:{event.id}"
    attempt = post(agent, configuration_of(agent), key, event.type, event_body(event, entity), event_id=event.id,
                   final=is_final_attempt())
    raise_for(agent, key, attempt)
    return attempt.status


def run(request: RunRequest) -> RunOutcome:
    """A ping (`agent.test`), signed like every delivery: a test run or the Run button checks the receiver."""
    key = f"test:{request.agent_run_id}"
    data = {"agent": request.agent.key, "agent_run_id": request.agent_run_id, "test": request.test,
            "message": "a test delivery from Arbill: check the signature, answer 2xx"}
    body = payload_body(f"ping_{request.agent_run_id}", TEST_EVENT, utcnow(), request.entity.code, data)
    attempt = post(request.agent, request.configuration, key, TEST_EVENT, body)
    row = attempt.row
    details = {"url": row.url if row else request.configuration.get("url"), "delivery_key": key,
               "status": attempt.status, "response_code": row.response_code if row else None,
               "duration_ms": row.duration_ms if row else None}
    return RunOutcome(f"{TEST_EVENT} ping: {attempt.describe()}", ok=attempt.ok, details=details)


SPEC = AgentSpec(
    key="webhook",
    name="Webhook",
    description=(
        "POSTs a signed JSON payload (HMAC-SHA256 over the timestamp and body) for the events you choose to your "
        "URL; a refused delivery is retried with backoff, and every attempt is logged with the response code."
    ),
    trigger_events=(*WEBHOOK_EVENTS, "manual.trigger"),
    settings=(
        Setting("url", "URL", "text", "",
                "Where the events are POSTed: an https:// address (http:// only for localhost).", validator=check_url),
        Setting("signing_secret", "Signing secret", "text", "",
                "At least 16 characters; the receiver checks X-Arbill-Signature with it (docs/webhooks.md). Never "
                "shown again once saved.", validator=check_secret, secret=True),
        Setting("retry_minutes", "Retry after (minutes)", "days", "1,5,30",
                "When the receiver does not answer 2xx, try again after these many minutes; then log it failed.",
                maximum=1440),
        Setting("timeout_seconds", "Timeout (seconds)", "int", 10,
                "How long to wait for the receiver's answer.", minimum=1, maximum=30),
    ),
    queue="default",
    on_event=on_event,
    run=run,
    template=True,
    overview_panel="agents/panels/webhook_deliveries.html",
    overview_context=delivery_log_context,
    retry_setting="retry_minutes",
    job_timeout=60,
)
