"""What our jobs leave in RQ carries ids and numbers only (app/agents/jobs.py).

RQ keeps a job's description, result and error in Redis, shows them on the dashboard (/rq) and logs
them; a customer's name or address there would reach whoever reads those. Our tables keep the rest.
"""
from datetime import date

from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select

from app.agents.jobs import agent_event_job, ids_only
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Collection, Event
from app.queues import get_redis
from app.schedules.cron import Preset
from app.schedules.service import ScheduleInput, create_schedule
from app.schedules.sync import sync_schedules
from tests.factories import make_contract, make_entity

ADMIN = Actor.system("test")
ADDRESS = "anna.schmidt@example.com"


@ids_only("delivery {0} of invoice {1}")  # as a job of app/agents/jobs.py
def refused_by_the_database(delivery_id: int, invoice_id: int) -> None:
    raise ValueError(f"new row violates check constraint: Failing row contains ({delivery_id}, {ADDRESS})")


def test_a_jobs_error_reaches_rq_with_its_type_and_stack_but_not_its_text(app):
    with app.app_context():
        queue = Queue("default", connection=get_redis())
        job = queue.enqueue(refused_by_the_database, 17, 42)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)  # a real worker
    assert job.get_status(refresh=True) == "failed"
    error = job.latest_result().exc_string
    assert error.rstrip().endswith("JobFailed: delivery 17 of invoice 42 failed: ValueError")
    assert "in refused_by_the_database" in error  # where it happened, for whoever fixes it
    assert ADDRESS not in error  # (the line that raised is shown: code, not data)


def test_a_collection_jobs_result_is_its_status_not_the_customers_name(db_session):
    entity = make_entity()
    customer = make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Anna Schmidt").customer
    customer.payment_method, customer.mandate_reference, customer.mandate_date = "sepa_debit", "M-1", date(2026, 1, 1)
    customer.iban = "DE89370400440532013001"  # a wrong check digit
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    issued = db.session.scalar(select(Event.id).where(Event.type == "invoice.issued"))
    assert agent_event_job("payment_collection", issued) == "failed"  # what RQ stores as the job's result
    assert "Anna Schmidt" in db.session.scalar(select(Collection.last_error))  # the reason stays with us


def test_a_schedules_job_names_the_schedule_by_its_id(db_session):
    schedule = create_schedule(make_entity(), ScheduleInput("billing_run", "Mondays for Anna Schmidt",
                                                            Preset("cron", cron="0 6 * * 1")), ADMIN)
    db.session.commit()
    sync_schedules()
    job = Job.fetch(f"schedule-{schedule.id}", connection=get_redis())
    assert job.description.startswith(f"schedule #{schedule.id} at ") and "Anna" not in job.description
