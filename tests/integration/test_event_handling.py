"""An event is done when each subscribed agent has acted on it, not when Redis took a job: the relay
records a handling per agent, the job marks it done, and the watchdog enqueues again what Redis lost."""
import json
from datetime import date, timedelta

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select

from app.agents.events import pending_handlings, relay_outbox, requeue_unhandled
from app.queues import agent_event_job_id
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Collection, EventHandling, Invoice, InvoiceDelivery
from app.models.types import utcnow
from app.queues import get_redis
from tests.factories import make_contract, make_entity
from tests.integration.test_delivery import work_off

ADMIN = Actor.system("test")


@pytest.fixture
def no_grace(app):
    saved = app.config["EVENT_HANDLING_GRACE_SECONDS"]
    app.config["EVENT_HANDLING_GRACE_SECONDS"] = 0
    yield
    app.config["EVENT_HANDLING_GRACE_SECONDS"] = saved


def bill(contracts: int = 3):
    entity = make_entity(locale="de_DE")
    for n in range(contracts):
        make_contract(entity, f"C-{n + 1}", start=date(2026, 11, 1), customer=f"Customer {n + 1}")
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    return entity, run


def handlings(status: str | None = None) -> list[EventHandling]:
    query = select(EventHandling).order_by(EventHandling.event_id, EventHandling.agent_key)
    return list(db.session.scalars(query.where(EventHandling.status == status) if status else query))


def test_the_relay_records_who_must_act_and_each_job_marks_its_part_done(app, db_session, mail_sink):
    bill(2)
    assert relay_outbox().jobs == 4
    assert [(h.agent_key, h.status) for h in handlings()] == [
        ("invoice_delivery", "pending"), ("payment_collection", "pending")] * 2
    work_off(mail_sink, "delivery")
    db.session.expire_all()
    assert {(h.agent_key, h.status) for h in handlings()} == {("invoice_delivery", "done"),
                                                              ("payment_collection", "pending")}
    work_off(mail_sink, "collection")
    db.session.expire_all()
    assert {h.status for h in handlings()} == {"done"} and all(h.handled_at for h in handlings())


def test_jobs_redis_lost_are_enqueued_again_and_act_once(app, db_session, mail_sink, no_grace):
    """Redis restarted empty after the relay: nothing is e-mailed or collected until the watchdog
    enqueues the jobs again; then every invoice is e-mailed once and collected once."""
    entity, run = bill(3)
    relay_outbox()
    get_redis().flushdb()
    assert requeue_unhandled().requeued == 6
    work_off(mail_sink, "delivery", "collection")
    assert sorted(m["To"] for m in mail_sink.messages()) == [f"c-{n}@example.com" for n in (1, 2, 3)]
    assert db.session.scalar(select(func.count()).select_from(Collection)) == 3
    db.session.expire_all()
    assert {h.status for h in handlings()} == {"done"}
    assert {h.enqueues for h in handlings()} == {2}
    requeued = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "workflow.step_requeued")).all()
    assert len(requeued) == 6 and {e.billing_run_id for e in requeued} == {run.id}
    assert {e.details["reason"] for e in requeued} == {"Redis lost the job (Redis restarted or was flushed)"}
    # Nothing pending any more: a second pass enqueues nothing, and a job that does run twice acts once.
    assert requeue_unhandled().requeued == 0
    db.session.execute(EventHandling.__table__.update().values(status="pending"))
    db.session.commit()
    assert requeue_unhandled().requeued == 6
    work_off(mail_sink, "delivery", "collection")
    assert len(mail_sink.messages()) == 3
    assert db.session.scalar(select(func.count()).select_from(InvoiceDelivery)) == 3


def test_the_watchdog_leaves_queued_jobs_alone_and_waits_out_the_grace_period(app, db_session):
    bill(2)
    relay_outbox()
    assert requeue_unhandled().requeued == 0  # within the grace period: not even looked at
    app.config["EVENT_HANDLING_GRACE_SECONDS"] = 0
    try:
        result = requeue_unhandled()
    finally:
        app.config["EVENT_HANDLING_GRACE_SECONDS"] = 120
    assert (result.requeued, result.waiting) == (0, 4)  # still queued in Redis: a backlog, not a loss
    assert Queue("delivery", connection=get_redis()).count == 2


def test_a_relay_that_could_not_reach_redis_leaves_its_events_to_the_watchdog(app, db_session, no_grace):
    bill(1)
    good = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        with pytest.raises(Exception):
            relay_outbox()
    finally:
        app.config["REDIS_URL"] = good
    db.session.expire_all()
    assert [(h.status, h.enqueued_at) for h in handlings()] == [("pending", None)] * 2
    result = requeue_unhandled()
    assert result.requeued == 2
    reasons = {e.details["reason"] for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "workflow.step_requeued"))}
    assert reasons == {"handing the job to Redis had failed"}


def test_a_job_rq_gave_up_on_is_reported_not_retried_forever(app, db_session, no_grace):
    bill(1)
    relay_outbox()
    collection, = [h for h in handlings() if h.agent_key == "payment_collection"]
    job = Job.fetch(agent_event_job_id("payment_collection", collection.event_id), connection=get_redis())
    job.set_status("failed")
    result = requeue_unhandled()
    assert (result.requeued, result.failed) == (0, 1)
    failed, = handlings("failed")
    assert failed.agent_key == "payment_collection" and "failed" in failed.error
    rows = pending_handlings()
    assert [(p.agent, p.status) for p in rows] == [("invoice_delivery", "pending"), ("payment_collection", "failed")]


def test_events_pending_lists_what_no_agent_has_acted_on(app, db_session, runner, no_grace):
    bill(1)
    result = runner.invoke(args=["events", "pending", "--json"])
    assert result.exit_code == 0, result.output
    not_relayed = json.loads(result.output)
    assert [(r["type"], r["agent"], r["status"]) for r in not_relayed] == [
        ("invoice.issued", "invoice_delivery", "not relayed"), ("invoice.issued", "payment_collection", "not relayed")]
    relay_outbox()
    rows = json.loads(runner.invoke(args=["events", "pending", "--json"]).output)
    assert {tuple(sorted(r)) for r in rows} == {("age_s", "agent", "enqueues", "error", "event_id", "status", "type")}
    assert [(r["agent"], r["status"]) for r in rows] == [("invoice_delivery", "pending"), ("payment_collection", "pending")]
    assert all(isinstance(r["age_s"], int) and r["age_s"] >= 0 for r in rows)
    db.session.execute(EventHandling.__table__.update().values(status="done"))
    db.session.commit()
    assert json.loads(runner.invoke(args=["events", "pending", "--json"]).output) == []
    assert "has been acted on" in runner.invoke(args=["events", "pending"]).output


def test_healthz_counts_the_events_not_acted_on_and_the_oldest_age(app, db_session, client, no_grace):
    bill(2)
    relay_outbox()
    db.session.execute(EventHandling.__table__.update().where(EventHandling.agent_key == "payment_collection")
                       .values(status="done"))
    from app.models import Event

    db.session.execute(Event.__table__.update().values(created_at=utcnow() - timedelta(minutes=7)))
    db.session.commit()
    report = client.get("/healthz").get_json()
    assert report["events_pending"] == 2
    assert 7 * 60 <= report["oldest_pending_event_age_s"] < 9 * 60
    assert report["deliveries_outcome_unknown"] == 0


# ---------------------------------------------------------------- undelivered invoices
def _age_invoices(minutes: int) -> None:
    db.session.execute(Invoice.__table__.update().values(posted_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()


def test_invoices_not_e_mailed_are_listed_and_resent_in_bulk(app, db_session, runner, mail_sink):
    entity, _ = bill(3)
    first, second, third = db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
    db.session.add_all([
        InvoiceDelivery(invoice_id=first.id, kind="auto", status="sent", attempts=1, sent_at=utcnow()),
        InvoiceDelivery(invoice_id=second.id, kind="auto", status="unknown", attempts=1, error="worker died"),
    ])
    db.session.commit()
    listed = json.loads(runner.invoke(args=["invoices", "list", "--entity", entity.code, "--undelivered",
                                            "--json"]).output)
    assert listed == []  # issued just now: the agent has an hour
    _age_invoices(90)
    result = runner.invoke(args=["invoices", "list", "--entity", entity.code, "--undelivered", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(r["number"], r["delivery"]) for r in listed] == [(second.number, "unknown"), (third.number, None)]

    resent = runner.invoke(args=["invoices", "resend", "--entity", entity.code, "--undelivered", "--json"])
    assert resent.exit_code == 0, resent.output
    assert json.loads(resent.output) == {"resent": [second.number, third.number], "in_progress": 0,
                                         "no_email": 0, "queued": True}
    # Asked twice, nothing doubles: the first resends are still in progress.
    again = json.loads(runner.invoke(args=["invoices", "resend", "--entity", entity.code, "--undelivered",
                                           "--json"]).output)
    assert again["resent"] == [] and again["in_progress"] == 2
    work_off(mail_sink, "delivery")
    assert sorted(m["To"] for m in mail_sink.messages()) == ["c-2@example.com", "c-3@example.com"]
    assert json.loads(runner.invoke(args=["invoices", "list", "--entity", entity.code, "--undelivered",
                                          "--json"]).output) == []


def test_resends_whose_job_redis_lost_are_enqueued_again_by_the_sweep(app, db_session, runner, mail_sink, no_grace):
    from app.agents.jobs import sweep_job

    entity, _ = bill(1)
    _age_invoices(90)
    assert runner.invoke(args=["invoices", "resend", "--entity", entity.code, "--undelivered"]).exit_code == 0
    get_redis().flushdb()
    assert sweep_job()["resends_requeued"] == 1
    work_off(mail_sink, "delivery")
    assert len(mail_sink.messages()) == 1
    assert sweep_job()["resends_requeued"] == 0
