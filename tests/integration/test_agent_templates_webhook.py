"""The Webhook template end to end: events through the real relay, Redis and an RQ worker process to a real HTTP
receiver on 127.0.0.1 that checks the signature; retries with RQ's backoff; the delivery log."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.agents.custom import CustomAgentInput, create_custom_agent
from app.agents.events import relay_outbox
from app.agents.runs import run_inline
from app.agents.webhooks import delivery_log_context, verify
from app.audit import Actor
from app.extensions import db
from app.models import AuditEntry, Event, EventHandling, WebhookDelivery
from app.outbox import emit
from app.queues import get_redis
from tests.factories import make_entity
from tests.integration.test_delivery import work_off

ADMIN = Actor.system("test")
SECRET = "whsec-0123456789abcdef-test"


class Receiver:
    """A real HTTP server in a thread: keeps every request, answers with the next of `codes` (then 200)."""

    def __init__(self, codes=()):
        self.codes, self.requests = list(codes), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                answer = b'{"ok": true}' if code < 300 else b"receiver is down for maintenance"
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/arbill"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(codes=()):
        made.append(Receiver(codes))
        return made[-1]
    yield make
    for r in made:
        r.close()


def webhook(entity, url, events=("invoice.issued", "payment.received"), **settings):
    agent = create_custom_agent(entity, CustomAgentInput(
        template="webhook", name="ERP hook", events=events, enabled=True,
        settings={"url": url, "signing_secret": SECRET, **settings}), ADMIN)
    db.session.commit()
    return agent


def deliveries(agent):
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.agent_id == agent.id)
                                   .order_by(WebhookDelivery.id)))


def test_events_of_its_entity_reach_the_receiver_signed(app, db_session, mail_sink, receiver):
    hook = receiver()
    entity, other = make_entity(), make_entity("FR01", country="FR", timezone="Europe/Paris")
    agent = webhook(entity, hook.url)
    emit("invoice.issued", {"invoice_id": 7, "number": "DE01-2026-00007", "entity": "DE01", "currency": "EUR",
                            "total": "58.53"}, legal_entity_id=entity.id)
    emit("invoice.issued", {"invoice_id": 8}, legal_entity_id=other.id)  # another entity's: not sent
    emit("bank_statement.imported", {"statement_id": 1, "entries": 2}, legal_entity_id=entity.id)  # not chosen
    db.session.commit()

    relay_outbox()
    work_off(mail_sink, "default")

    (headers, body), = hook.requests
    event = db.session.scalar(select(Event).where(Event.legal_entity_id == entity.id, Event.type == "invoice.issued"))
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Arbill-Event"] == "invoice.issued"
    assert headers["X-Arbill-Delivery"] == f"whd_{agent.id}_event_{event.id}"
    assert verify(SECRET, headers["X-Arbill-Timestamp"], body, headers["X-Arbill-Signature"])
    assert not verify("another-secret-0123456789", headers["X-Arbill-Timestamp"], body, headers["X-Arbill-Signature"])
    assert not verify(SECRET, headers["X-Arbill-Timestamp"], body + b" ", headers["X-Arbill-Signature"])
    document = json.loads(body)
    assert document == {"id": f"evt_{event.id}", "type": "invoice.issued", "legal_entity": "DE01",
                        "created_at": document["created_at"],
                        "data": {"invoice_id": 7, "number": "DE01-2026-00007", "entity": "DE01", "currency": "EUR",
                                 "total": "58.53"}}
    assert document["created_at"].endswith("Z")
    row, = deliveries(agent)
    assert (row.delivery_key, row.attempt, row.status, row.response_code) == (f"event:{event.id}", 1, "delivered", 200)
    assert row.response_excerpt == '{"ok": true}' and row.duration_ms is not None
    db.session.expire_all()
    assert {h.status for h in db.session.scalars(select(EventHandling).where(
        EventHandling.agent_key == agent.key))} == {"done"}


def test_a_refused_delivery_is_retried_with_backoff_and_delivered_once(app, db_session, mail_sink, receiver):
    hook = receiver(codes=[500])
    entity = make_entity()
    agent = webhook(entity, hook.url, retry_minutes="1,5")
    emit("payment.received", {"invoice_id": 3, "payment_id": 9, "amount": "10.00", "currency": "EUR"},
         legal_entity_id=entity.id)
    db.session.commit()
    relay_outbox()

    work_off(mail_sink, "default")  # the first attempt: 500, RQ schedules the retry a minute later
    registry = ScheduledJobRegistry("default", connection=get_redis())
    job_id, = registry.get_job_ids()
    registry.requeue(job_id)  # (the minute has passed: what RQ's scheduler does)
    work_off(mail_sink, "default")  # the second: 200

    first, second = hook.requests
    assert first[0]["X-Arbill-Delivery"] == second[0]["X-Arbill-Delivery"]  # receivers drop repeats by it
    assert first[1] == second[1]  # the same body; each attempt signed with its own timestamp
    assert verify(SECRET, second[0]["X-Arbill-Timestamp"], second[1], second[0]["X-Arbill-Signature"])
    db.session.expire_all()
    assert [(d.attempt, d.status, d.response_code) for d in deliveries(agent)] == [
        (1, "retrying", 500), (2, "delivered", 200)]
    assert "receiver is down" in deliveries(agent)[0].response_excerpt
    assert "HTTP 500" in deliveries(agent)[0].error

    # The event handed on again (the relay is at-least-once): nothing is POSTed twice.
    from app.agents.templates.webhook import on_event
    event = db.session.scalar(select(Event).where(Event.type == "payment.received"))
    assert on_event(event, agent) == "already delivered"
    assert len(hook.requests) == 2 and len(deliveries(agent)) == 2
    assert delivery_log_context(agent)["delivery_counts"] == {"delivered": 1, "retrying": 1}


def test_the_last_attempt_refused_is_logged_failed_and_audited(app, db_session, receiver):
    hook = receiver(codes=[503])
    entity = make_entity()
    agent = webhook(entity, hook.url)
    emit("invoice.issued", {"invoice_id": 1}, legal_entity_id=entity.id)
    db.session.commit()
    from app.agents.templates.webhook import on_event
    event = db.session.scalar(select(Event))

    assert on_event(event, agent) == "failed"  # outside RQ: no retry follows

    row, = deliveries(agent)
    assert (row.status, row.response_code) == ("failed", 503)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "webhook.delivery_failed"))
    assert entry.subject_id == agent.id and entry.details["response_code"] == 503


def test_an_unreachable_receiver_is_logged_with_the_error(app, db_session, receiver):
    hook = receiver()
    url = hook.url
    hook.close()  # nobody listens there any more
    entity = make_entity()
    agent = webhook(entity, url, timeout_seconds="2")

    run = run_inline(agent, entity, "manual", ADMIN)

    assert run.status == "failed" and "ConnectionError" in run.summary
    row, = deliveries(agent)
    assert row.status == "failed" and row.response_code is None and "ConnectionError" in row.error


def test_a_test_run_pings_the_receiver_signed_and_logs_it(app, db_session, receiver):
    hook = receiver()
    entity = make_entity()
    agent = webhook(entity, hook.url)

    run = run_inline(agent, entity, "test", ADMIN)

    assert run.status == "succeeded" and "HTTP 200" in run.summary
    (headers, body), = hook.requests
    assert headers["X-Arbill-Event"] == "agent.test"
    assert verify(SECRET, headers["X-Arbill-Timestamp"], body, headers["X-Arbill-Signature"])
    document = json.loads(body)
    assert document["type"] == "agent.test" and document["data"]["test"] is True
    row, = deliveries(agent)
    assert (row.delivery_key, row.status, row.event_id) == (f"test:{run.id}", "delivered", None)
    # The delivery log panel renders with what its context gives.
    from flask import render_template
    from app.agents.registry import get_template
    spec = get_template("webhook")
    with app.test_request_context():
        html = render_template(spec.overview_panel, agent=agent, **spec.overview_context(agent))
    assert "Delivery log" in html and "agent.test" in html and f"test:{run.id}" in html
