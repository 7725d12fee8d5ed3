"""Billing under races and failures: threads, processes, a real RQ worker, Redis outages, killed workers."""
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, insert, select

from app import create_app
from app.agents.events import relay_outbox, requeue_unhandled
from app.audit import Actor
from app.billing.chunks import process_chunk
from app.billing.ledger import lock_entity
from app.billing.runs import start_billing_run
from app.billing.supervision import supervise_runs
from app.extensions import db
from app.models import BillingRun, BillingRunItem, Contract, ContractLine, Customer, Event, EventHandling, Invoice
from app.outbox import emit
from app.queues import get_redis
from tests.conftest import ROOT, make_config
from tests.factories import CUSTOMER_ADDRESS, make_contract, make_entity

CLI = Actor.system("test")
AS_OF = date(2026, 11, 26)


def seed_contracts(entity, count: int, start=date(2026, 10, 1)) -> None:
    """`count` monthly contracts, each with two due periods as of AS_OF; set-based, for speed."""
    db.session.execute(insert(Customer), [{"legal_entity_id": entity.id, "name": f"Customer {i}", **CUSTOMER_ADDRESS}
                                          for i in range(count)])
    customers = list(db.session.scalars(select(Customer.id).where(Customer.legal_entity_id == entity.id).order_by(Customer.id)))
    db.session.execute(insert(Contract), [
        {"legal_entity_id": entity.id, "customer_id": cid, "reference": f"C-{i:05d}", "status": "active",
         "currency": "EUR", "frequency": "monthly", "start_date": start} for i, cid in enumerate(customers)])
    contracts = list(db.session.scalars(select(Contract.id).where(Contract.legal_entity_id == entity.id)))
    db.session.execute(insert(ContractLine), [
        {"contract_id": cid, "position": 1, "description": "Plan", "quantity": 1, "unit_price": 49, "vat_rate": 19}
        for cid in contracts])
    db.session.commit()


def assert_billed_once_without_gaps(entity, expected: int) -> None:
    db.session.expire_all()
    pairs = db.session.execute(select(Invoice.contract_id, Invoice.period_start)).all()
    assert len(pairs) == expected == len(set(pairs))
    numbers = sorted(db.session.scalars(select(Invoice.sequence_number).where(Invoice.legal_entity_id == entity.id)))
    assert numbers == list(range(1, expected + 1))


def in_thread(app, target, *args):
    errors = []

    def body():
        with app.app_context():
            try:
                target(*args)
            except Exception as error:  # surfaced by the test
                errors.append(error)
            finally:
                db.session.remove()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


def test_racing_requests_start_one_run(app, db_session):
    entity = make_entity()
    db.session.commit()
    entity_id, results = entity.id, []

    def request_run():
        results.append(start_billing_run(db.session.get(type(entity), entity_id), AS_OF, "manual", CLI, enqueue=False))

    threads = [in_thread(app, request_run) for _ in range(8)]
    for thread, errors in threads:
        thread.join()
        assert not errors, errors
    assert sum(r.started for r in results) == 1
    assert len({r.run.number for r in results}) == 1
    assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 1


def test_chunks_racing_on_one_entity_bill_each_period_once_with_gapless_numbers(app, db_session):
    """Four threads write overlapping chunks (every chunk twice, as a duplicated job would)."""
    entity = make_entity()
    seed_contracts(entity, 120)
    run = start_billing_run(entity, AS_OF, "manual", CLI, enqueue=False).run
    ids = list(db.session.scalars(select(Contract.id).order_by(Contract.id)))
    run.status, run.contracts_total = "running", len(ids)
    db.session.commit()
    run_id = run.id
    chunks = [ids[i:i + 15] for i in range(0, len(ids), 15)]
    work = chunks + list(reversed(chunks))
    settings = {"auto_post": True, "payment_terms_days": 14}

    def worker(share):
        for chunk in share:
            process_chunk(run_id, chunk, settings)

    threads = [in_thread(app, worker, work[i::4]) for i in range(4)]
    for thread, errors in threads:
        thread.join()
        assert not errors, errors
    assert_billed_once_without_gaps(entity, 240)
    db.session.expire_all()
    finished = db.session.get(BillingRun, run_id)
    assert finished.status == "completed" and finished.contracts_processed == 120 and finished.contracts_failed == 0
    assert db.session.scalar(select(func.count()).select_from(BillingRunItem)) == 120


def flask_cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env or os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_cli_runs_racing_bill_once(app, db_session):
    entity = make_entity()
    seed_contracts(entity, 300)
    procs = [flask_cli("billing", "run", "--entity", "DE01", "--as-of", AS_OF.isoformat(), "--inline")
             for _ in range(2)]
    outputs = [(p.wait(120), p.stdout.read()) for p in procs]
    assert any(code == 0 for code, _ in outputs), outputs
    for code, output in outputs:
        assert code == 0 or "already" in output, output
    assert_billed_once_without_gaps(entity, 600)


def run_worker(*queues, env=None, burst=True):
    args = [sys.executable, "worker.py", *(["--burst"] if burst else []), *queues]
    return subprocess.Popen(args, cwd=ROOT, env=env or os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_a_run_executed_by_a_real_rq_worker(app, db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
    make_contract(entity, "C-2", start=date(2026, 11, 1), customer="Starship Technologies")
    db.session.commit()
    result = start_billing_run(entity, AS_OF, "manual", CLI)
    assert result.run.rq_job_id == f"billing-run-{result.run.id}"
    assert get_redis().llen("rq:queue:billing") == 1
    worker = run_worker("billing", "default")
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 0, output
    db.session.expire_all()
    run = db.session.get(BillingRun, result.run.id)
    assert run.status == "completed", (run.error, output)
    assert run.totals == {"EUR": "117.06"} and run.invoices_created == 2


def test_a_fanned_out_run_is_shared_by_workers(app, db_session):
    from app.models import AgentDefinition

    db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).configuration = {
        "auto_post": True, "payment_terms_days": 14, "chunk_size": 25, "as_of_offset_days": 0}
    entity = make_entity()
    seed_contracts(entity, 100)
    run_id = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    workers = [run_worker("billing", "default") for _ in range(2)]
    for worker in workers:
        assert worker.wait(180) == 0, worker.stdout.read()
    db.session.expire_all()
    run = db.session.get(BillingRun, run_id)
    assert run.status == "completed" and run.contracts_processed == 100
    audit = db.session.scalar(select(func.count()).where(
        Event.billing_run_id == run_id, Event.type == "invoice.issued"))
    assert audit == 200
    assert_billed_once_without_gaps(entity, 200)


def test_outbox_relay_survives_redis_outage_and_events_seen_twice_start_one_run(app, database_url, private_redis, db_session):
    other = create_app(make_config(database_url, private_redis.url))
    with other.app_context():
        entity = make_entity()
        make_contract(entity, "C-1", start=date(2026, 11, 1))
        emit("billing.run_requested", {"entity": "DE01", "as_of": AS_OF.isoformat()}, legal_entity_id=entity.id)
        db.session.commit()
        private_redis.stop()
        with pytest.raises(Exception):
            relay_outbox()
        db.session.rollback()
        # The event is on record as handed to the billing agent, its job as not enqueued.
        handling = db.session.scalar(select(EventHandling))
        assert (handling.agent_key, handling.status, handling.enqueued_at) == ("billing_run", "pending", None)

        private_redis.start()
        assert relay_outbox().dispatched == 0
        assert requeue_unhandled().requeued == 1  # the watchdog does not wait for the grace period here
        env = {**os.environ, "REDIS_URL": private_redis.url}
        assert run_worker("billing", "default", env=env).wait(120) == 0
        db.session.expire_all()
        run = db.session.scalar(select(BillingRun))
        assert run.trigger == "event" and run.actor_type == "event" and "billing.run_requested" in run.actor_label

        # The same event dispatched again (at-least-once delivery): still one run.
        event = db.session.scalar(select(Event).where(Event.type == "billing.run_requested"))
        event.dispatched_at = None
        db.session.commit()
        assert relay_outbox().jobs == 1
        assert run_worker("billing", "default", env=env).wait(120) == 0
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 1
        assert {h.status for h in db.session.scalars(select(EventHandling)
                                                     .where(EventHandling.agent_key == "billing_run"))} == {"done"}
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
        db.session.remove()


def test_a_run_whose_worker_was_killed_waits_for_its_chunk_to_be_put_back_then_completes(app, db_session):
    """The supervisor in this process, its clock turned by hand; tests/faults/test_run_drills.py
    has the same with the scheduler process doing it."""
    from app.models import AgentDefinition, AuditEntry
    from tests.processes import kill_hard, wait_until

    db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).configuration = {
        "auto_post": True, "payment_terms_days": 14, "chunk_size": 10, "as_of_offset_days": 0}
    entity = make_entity()
    seed_contracts(entity, 1000)
    first = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    worker = run_worker("billing", burst=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Look under the entity's billing lock: while the test holds it no chunk can commit, so the
        # run cannot finish between this look and the kill, however busy the machine is.
        lock_entity(entity.id)
        db.session.expire_all()
        if db.session.get(BillingRun, first).contracts_processed >= 20:
            break
        db.session.rollback()
        time.sleep(0.01)
    started = wait_until(lambda: started_chunks_not_done(first), "the worker to take its next chunk")
    kill_hard(worker)  # the worker and its work horse, mid-chunk
    db.session.rollback()  # release the lock
    db.session.expire_all()
    run = db.session.get(BillingRun, first)
    assert run.status == "running" and 20 <= run.contracts_processed < 1000
    db.session.rollback()

    # Its other chunks wait in the queue: the run is alive, a new request is told so.
    refused = start_billing_run(entity, AS_OF, "manual", CLI, enqueue=False)
    assert not refused.started and "already running" in refused.message
    app.config["WORKER_LOST_SECONDS"] = 0  # the worker has been silent long enough
    try:
        result = supervise_runs()
    finally:
        app.config["WORKER_LOST_SECONDS"] = 30
    assert (result.requeued, result.failed) == (1, 0)
    assert run_worker("billing").wait(180) == 0
    db.session.expire_all()
    run = db.session.get(BillingRun, first)
    assert run.status == "completed" and run.contracts_processed == 1000
    assert_billed_once_without_gaps(entity, 2000)
    requeued = db.session.scalars(select(AuditEntry).where(AuditEntry.billing_run_id == first,
                                                           AuditEntry.action == "billing_run.chunk_requeued")).all()
    assert [e.details["job_id"] for e in requeued] == started
    assert requeued[0].details["reason"] == f"worker {socket.gethostname()}.{worker.pid} died"


def started_chunks_not_done(run_id: int, worker: str | None = None) -> list[str]:
    """Ids of the run's chunk jobs that a worker (`worker`, or any) has started and not committed yet."""
    from app.models import BillingRunChunk

    jobs = []
    for job_id in StartedJobRegistry("billing", connection=get_redis()).get_job_ids(cleanup=False):
        job = Job.fetch(job_id, connection=get_redis())
        chunk = db.session.scalar(select(BillingRunChunk).where(BillingRunChunk.billing_run_id == run_id,
                                                                BillingRunChunk.job_id == job_id))
        if chunk is None or (worker is not None and job.worker_name != worker):
            continue
        billed = db.session.scalar(select(func.count()).select_from(BillingRunItem).where(
            BillingRunItem.billing_run_id == run_id,
            BillingRunItem.contract_id.between(chunk.first_contract_id, chunk.last_contract_id)))
        if billed < chunk.size:
            jobs.append(job_id)
    return jobs


def test_supervisor_leaves_progressing_runs_alone(app, db_session):
    entity = make_entity()
    db.session.commit()
    run = start_billing_run(entity, AS_OF, "manual", CLI, enqueue=False).run
    run.status = "running"
    from app.models.types import utcnow

    run.started_at = run.heartbeat_at = utcnow()
    db.session.commit()
    assert supervise_runs().failed == 0
