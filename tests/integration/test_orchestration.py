"""Orchestration: rules map events to agents; a loop guard stops runaway chains."""
from datetime import date

from sqlalchemy import func, select

from app.agents.events import relay_outbox, subscribers
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, Event, OrchestrationRule
from app.outbox import emit
from app.queues import get_redis
from tests.factories import make_entity


def test_default_rules_send_issued_invoices_to_delivery_and_collection(db_session):
    assert subscribers("invoice.issued") == ["invoice_delivery", "payment_collection"]
    assert subscribers("billing.run_requested") == ["billing_run"]
    assert subscribers("payment.retry_scheduled") == ["payment_collection"]
    assert subscribers("billing_run.completed") == []


def test_disabled_rules_and_disabled_agents_are_not_run(db_session):
    db.session.scalar(select(OrchestrationRule).where(OrchestrationRule.agent_key == "invoice_delivery",
                                                      OrchestrationRule.event_type == "invoice.issued")).enabled = False
    db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "payment_collection")).enabled = False
    db.session.commit()
    assert subscribers("invoice.issued") == []


def test_relay_enqueues_one_job_per_subscribed_agent_on_its_queue_and_audits_the_step(db_session):
    entity = make_entity()
    emit("invoice.issued", {"invoice_id": 1, "number": "X"}, legal_entity_id=entity.id)
    db.session.commit()
    result = relay_outbox()
    assert (result.dispatched, result.jobs) == (1, 2)
    redis = get_redis()
    assert redis.llen("rq:queue:delivery") == 1 and redis.llen("rq:queue:collection") == 1
    steps = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "workflow.step_fired")))
    assert sorted(s.details["agent"] for s in steps) == ["invoice_delivery", "payment_collection"]


def test_a_relay_over_several_batches_enqueues_each_event_once_with_its_agents_retry_setting(db_session):
    from rq.job import Job

    from app.agents.service import current_configuration, get_agent

    entity = make_entity()
    delivery = get_agent("invoice_delivery")
    delivery.configuration = {**current_configuration(delivery), "retry_minutes": "2,10"}
    for n in range(7):
        emit("invoice.issued", {"invoice_id": n, "number": f"X-{n}"}, legal_entity_id=entity.id)
    db.session.commit()
    result = relay_outbox(batch_size=3)  # three batches: 3 + 3 + 1 events
    assert (result.dispatched, result.jobs) == (7, 14)
    redis = get_redis()
    delivery_jobs = [Job.fetch(job_id.decode(), connection=redis) for job_id in redis.lrange("rq:queue:delivery", 0, -1)]
    assert sorted(job.args[1] for job in delivery_jobs) == sorted(e.id for e in db.session.scalars(select(Event)))
    assert {(job.retries_left, tuple(job.retry_intervals)) for job in delivery_jobs} == {(2, (120, 600))}
    assert redis.llen("rq:queue:collection") == 7
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "workflow.step_fired")) == 14
    assert relay_outbox().dispatched == 0  # all marked dispatched


def test_a_chain_deeper_than_the_limit_is_stopped_and_reported(app, db_session):
    entity = make_entity()
    app.config["EVENT_CHAIN_MAX_DEPTH"] = 3
    try:
        emit("billing.run_requested", {"entity": entity.code}, legal_entity_id=entity.id, depth=4)
        emit("billing.run_requested", {"entity": entity.code}, legal_entity_id=entity.id, depth=3)
        db.session.commit()
        result = relay_outbox()
    finally:
        app.config["EVENT_CHAIN_MAX_DEPTH"] = 5
    assert (result.dispatched, result.jobs, result.stopped) == (2, 1, 1)
    stopped = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "workflow.stopped"))
    assert "stopped so it cannot loop forever" in stopped.details["reason"]
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))) == 0


def test_a_run_started_by_an_event_emits_deeper_events(db_session):
    from app.agents.builtin.billing_run import on_event
    from app.models import BillingRun

    entity = make_entity()
    emit("billing.run_requested", {"as_of": date(2026, 11, 26).isoformat()}, legal_entity_id=entity.id, depth=2)
    db.session.commit()
    event = db.session.scalar(select(Event))
    run_id = on_event(event)
    assert db.session.get(BillingRun, run_id).event_depth == 3
