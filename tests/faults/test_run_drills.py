"""Fault drills with real processes: a worker killed mid-chunk, Redis stopped, Redis restarted empty.

Real workers (worker.py) and the real scheduler (`flask scheduler run`), a real Redis (our own
server where the drill stops it), the test database. The crash-detection intervals are turned down
through the environment (WORKER_HEARTBEAT_SECONDS and friends) so that a drill takes seconds, not
minutes; every wait polls for a state with a generous limit and nothing asserts how long it took.
"""
from datetime import date, timedelta
from decimal import Decimal

from babel.numbers import format_currency
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import func, select

from app import create_app
from app.audit import Actor
from app.billing.ledger import lock_entity
from app.billing.runs import start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, BillingRun, Invoice, LegalEntity
from app.models.runs import ACTIVE_RUN_STATUSES
from app.schedules.sync import HEARTBEAT_KEY
from tests.conftest import make_config
from tests.factories import make_entity
from tests.integration.test_billing_concurrency import (assert_billed_once_without_gaps, seed_contracts,
                                                        started_chunks_not_done)
from tests.processes import wait_until

CLI = Actor.system("test")
AS_OF = date(2026, 11, 26)
CONTRACTS, CHUNK = 400, 25  # 16 chunks, 800 invoices (two due periods each)
# Crash detection in seconds instead of a minute: a busy worker reports every second, one silent
# for 3 s is taken as dead, the scheduler looks every second.
FAST = {"WORKER_HEARTBEAT_SECONDS": "1", "WORKER_LOST_SECONDS": "3", "RUN_SUPERVISE_SECONDS": "1",
        "REDIS_RETRY_MAX_SECONDS": "2"}


def small_chunks() -> None:
    db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).configuration = {
        "auto_post": True, "payment_terms_days": 14, "chunk_size": CHUNK, "as_of_offset_days": 0}
    db.session.commit()


def run_state(run_id: int) -> BillingRun:
    db.session.expire_all()
    run = db.session.get(BillingRun, run_id)
    db.session.rollback()
    return run


def ended(run_id: int) -> BillingRun | None:
    run = run_state(run_id)
    return run if run.status not in ACTIVE_RUN_STATUSES else None


def progressed(run_id: int, at_least: int) -> bool:
    return run_state(run_id).contracts_processed >= at_least


def audit(run_id: int, action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.billing_run_id == run_id,
                                                            AuditEntry.action == action).order_by(AuditEntry.id)))


def workers_registered(connection: Redis, *names: str) -> bool:
    return set(names) <= {w.name for w in Worker.all(connection=connection)}


def hold_the_lock_mid_run(entity_id: int, run_id: int, worker: str | None = None) -> str:
    """Take the entity's billing lock (in the test's transaction) once the run has billed a chunk,
    and keep it until a worker (`worker`, or any) has taken a chunk it cannot commit meanwhile:
    that chunk's job id. Progress is read under the lock, so the run cannot end in between."""
    def billed_some() -> bool:
        lock_entity(entity_id)
        db.session.expire_all()
        if db.session.get(BillingRun, run_id).contracts_processed >= CHUNK:
            return True
        db.session.rollback()
        return False

    wait_until(billed_some, "the first chunk to be billed", every=0.01)
    return wait_until(lambda: started_chunks_not_done(run_id, worker), "a worker to take a chunk")[0]


# ------------------------------------------------------------------ (a) a worker killed mid-chunk
def test_a_worker_killed_mid_chunk_is_noticed_its_chunk_requeued_and_the_run_completes(app, db_session, processes):
    small_chunks()
    entity = make_entity()
    seed_contracts(entity, CONTRACTS)
    from app.queues import get_redis

    scheduler = processes.scheduler(FAST)
    doomed, survivor = processes.worker("drill-a", FAST, "billing"), processes.worker("drill-b", FAST, "billing")
    wait_until(lambda: workers_registered(get_redis(), "drill-a", "drill-b"), "both workers to listen")
    run_id = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    # Under the entity's billing lock no chunk commits: the chunk drill-a has taken stays unbilled
    # until drill-a is dead, however busy the machine is.
    taken = hold_the_lock_mid_run(entity.id, run_id, worker="drill-a")
    doomed.kill_hard()  # SIGKILL: the worker, its work horse and its RQ scheduler
    db.session.rollback()  # the lock goes

    run = wait_until(lambda: ended(run_id), "the run to end")
    assert run.status == "completed", run.error
    assert run.contracts_processed == CONTRACTS and run.invoices_created == 2 * CONTRACTS
    assert_billed_once_without_gaps(entity, 2 * CONTRACTS)
    requeued = audit(run_id, "billing_run.chunk_requeued")
    assert [(e.details["job_id"], e.details["reason"]) for e in requeued] == [(taken, "worker drill-a died")]
    first = int(taken.rsplit("-", 1)[1])
    assert requeued[0].details["contracts"].startswith(f"contracts #{first}–#")
    assert survivor.alive() and scheduler.alive()


def test_a_worker_killed_mid_chunk_while_invoices_are_emailed_every_invoice_is_billed_and_emailed_once(
        app, db_session, processes, tmp_path):
    """The whole path with nobody acting: billing, the outbox, delivery over a real SMTP server, while a
    worker dies in the middle of a chunk. Every contract-period is invoiced once, numbers are gapless,
    and every invoice reaches its customer exactly once."""
    from collections import Counter

    from app.models import Customer, InvoiceDelivery
    from tests.conftest import MailSink, free_port

    contracts = 4 * CHUNK  # 4 chunks, 200 invoices
    small_chunks()
    entity = make_entity(finance_email="finance@example.com")
    seed_contracts(entity, contracts)
    for customer in db.session.scalars(select(Customer).where(Customer.legal_entity_id == entity.id)):
        customer.email = f"customer-{customer.id}@example.com"
    db.session.commit()
    sink = MailSink(tmp_path / "mailbox", free_port())
    sink.start()
    env = {**FAST, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port)}
    queues = ("billing", "default", "delivery", "collection")
    from app.queues import get_redis

    try:
        processes.scheduler(env)
        doomed, survivor = processes.worker("mail-a", env, *queues), processes.worker("mail-b", env, *queues)
        wait_until(lambda: workers_registered(get_redis(), "mail-a", "mail-b"), "both workers to listen")
        run_id = start_billing_run(entity, AS_OF, "manual", CLI).run.id
        taken = hold_the_lock_mid_run(entity.id, run_id, worker="mail-a")
        doomed.kill_hard()
        db.session.rollback()

        run = wait_until(lambda: ended(run_id), "the run to end")
        assert run.status == "completed", run.error
        assert_billed_once_without_gaps(entity, 2 * contracts)

        def deliveries() -> Counter:
            db.session.expire_all()
            found = Counter(d.status for d in db.session.scalars(select(InvoiceDelivery)))
            db.session.rollback()
            return found

        wait_until(lambda: deliveries() == Counter(sent=2 * contracts), "every invoice to be e-mailed", every=0.5)
    finally:
        sink.stop()
    numbers = set(db.session.scalars(select(Invoice.number).where(Invoice.legal_entity_id == entity.id)))
    subjects = Counter(m["Subject"] for m in sink.messages())
    per_invoice = Counter({number: sum(n for subject, n in subjects.items() if number in subject.split())
                           for number in numbers})
    assert set(per_invoice.values()) == {1}, survivor.output()
    assert sum(subjects.values()) == 2 * contracts
    # The dead worker's chunk was put back (on a loaded machine the supervisor may put back another one too:
    # never twice at once, and billing stays once per contract-period, as asserted above).
    requeued = audit(run_id, "billing_run.chunk_requeued")
    assert (taken, "worker mail-a died") in [(e.details["job_id"], e.details["reason"]) for e in requeued]


# ------------------------------------------------------------------ (b) Redis away for a while
def test_worker_and_scheduler_wait_for_redis_and_carry_on(app, private_redis, processes):
    env = {**FAST, "REDIS_URL": private_redis.url}
    redis = private_redis.client()
    worker = processes.worker("drill-w", env)
    scheduler = processes.scheduler(env)
    wait_until(lambda: workers_registered(redis, "drill-w") and redis.exists(HEARTBEAT_KEY),
               "the worker to listen and the scheduler to beat")

    private_redis.stop()
    for process, who in ((worker, "Worker drill-w"), (scheduler, "Scheduler")):  # each tries again and again
        process.wait_for_output(f"{who}: Redis is unreachable", count=2)
    private_redis.start()  # empty: the restart lost every key
    for process, who in ((worker, "Worker drill-w"), (scheduler, "Scheduler")):
        process.wait_for_output(f"{who}: Redis is back after")
    assert worker.alive() and scheduler.alive()

    job = Queue("default", connection=redis).enqueue("os.getpid")
    wait_until(lambda: job.get_status(refresh=True) == "finished", "the worker to run a job enqueued afterwards")
    job.refresh()
    assert job.worker_name == "drill-w" and job.return_value() is not None
    assert workers_registered(redis, "drill-w")  # registered again in the empty Redis
    # The scheduler put its schedules back into the empty Redis and beats again.
    wait_until(lambda: redis.exists(HEARTBEAT_KEY), "the scheduler's heartbeat")
    scheduled = {job_id.decode() for job_id in redis.zrange("rq:scheduler:scheduled_jobs", 0, -1)}
    assert "system-outbox-relay" in scheduled
    assert worker.stop() == 0 and scheduler.stop() == 0


def test_sigterm_stops_worker_and_scheduler_while_they_wait_for_redis(app, private_redis, processes):
    env = {**FAST, "REDIS_URL": private_redis.url, "REDIS_RETRY_MAX_SECONDS": "3600"}
    redis = private_redis.client()
    worker, scheduler = processes.worker("drill-w", env), processes.scheduler(env)
    wait_until(lambda: workers_registered(redis, "drill-w") and redis.exists(HEARTBEAT_KEY),
               "the worker to listen and the scheduler to beat")
    private_redis.stop()
    for process, who in ((worker, "Worker drill-w"), (scheduler, "Scheduler")):
        process.wait_for_output(f"{who}: Redis is unreachable", count=3)
    # Redis stays down: they stop on SIGTERM, not on Redis coming back, and cleanly.
    assert worker.stop() == 0, worker.output()
    assert scheduler.stop() == 0, scheduler.output()
    assert "Redis is back after" not in worker.output() + scheduler.output()


# ------------------------------------------------------------------ (c) Redis loses the run's jobs
def _lose_the_jobs_mid_run(private_redis, processes, env: dict[str, str], entity) -> tuple[int, Redis]:
    """Start a run on our own Redis; with one chunk billed and another in a worker's hands, restart
    Redis empty: the queued chunk jobs are gone."""
    redis = private_redis.client()
    processes.scheduler(env)
    processes.worker("drill-c", env, "billing")
    wait_until(lambda: workers_registered(redis, "drill-c"), "the worker to listen")
    run_id = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    hold_the_lock_mid_run(entity.id, run_id)
    assert Queue("billing", connection=redis).count > 0  # chunks wait in the queue …
    private_redis.stop()
    private_redis.start()  # … and are gone
    db.session.rollback()
    return run_id, redis


def test_a_run_whose_jobs_redis_lost_is_requeued_and_completes(app, database_url, private_redis, processes):
    env = {**FAST, "REDIS_URL": private_redis.url}
    with create_app(make_config(database_url, private_redis.url)).app_context():
        small_chunks()
        entity = make_entity()
        seed_contracts(entity, CONTRACTS)
        run_id, _redis = _lose_the_jobs_mid_run(private_redis, processes, env, entity)

        run = wait_until(lambda: ended(run_id), "the run to end")
        assert run.status == "completed", run.error
        assert_billed_once_without_gaps(entity, 2 * CONTRACTS)
        reasons = {e.details["reason"] for e in audit(run_id, "billing_run.chunk_requeued")}
        assert reasons == {"Redis lost its job"}
        # Nothing is missing: a new run finds nothing to bill.
        rerun = start_billing_run(entity, AS_OF, "manual", CLI).run.id
        rerun = wait_until(lambda: ended(rerun), "the new run to end")
        assert rerun.status == "completed" and rerun.invoices_created == 0
        assert_billed_once_without_gaps(entity, 2 * CONTRACTS)
        db.session.remove()


def test_a_run_whose_jobs_redis_lost_fails_naming_redis_and_shows_its_invoices(
        app, database_url, private_redis, processes, admin_client):
    # Nothing may be put back, and a run without live jobs is failed after one second without progress.
    env = {**FAST, "REDIS_URL": private_redis.url, "RUN_MAX_REQUEUES": "0", "RUN_STALE_SECONDS": "1"}
    with create_app(make_config(database_url, private_redis.url)).app_context():
        small_chunks()
        entity = make_entity()
        seed_contracts(entity, CONTRACTS)
        entity_id = entity.id
        run_id, _redis = _lose_the_jobs_mid_run(private_redis, processes, env, entity)

        run = wait_until(lambda: ended(run_id), "the run to end")
        assert run.status == "failed"
        assert run.error.startswith("Redis lost the run's jobs (Redis restarted or was flushed)"), run.error
        made = db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.billing_run_id == run_id))
        total = db.session.scalar(select(func.sum(Invoice.total_amount)).where(Invoice.billing_run_id == run_id))
        assert 0 < made < 2 * CONTRACTS and run.invoices_created == made
        assert run.totals == {"EUR": f"{total:.2f}"}
        assert f"its {made} invoice(s) are kept" in run.error.lower()
        db.session.remove()

    # The run page and the runs list show what the failed run created, and the page says why it failed.
    shown = format_currency(total, "EUR", locale="de_DE")
    page = admin_client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert shown in page and f'<div class="figure">{made}</div>' in page and "Redis lost the run&#39;s jobs" in page
    assert shown in admin_client.get("/runs").get_data(as_text=True)

    with create_app(make_config(database_url, private_redis.url)).app_context():
        entity = db.session.get(LegalEntity, entity_id)
        rerun = start_billing_run(entity, AS_OF, "manual", CLI).run.id
        rerun = wait_until(lambda: ended(rerun), "the new run to end")
        assert rerun.status == "completed" and rerun.invoices_created == 2 * CONTRACTS - made
        assert_billed_once_without_gaps(entity, 2 * CONTRACTS)
        db.session.remove()


# ------------------------------------------------------------------ (d) work that is really gone
def test_a_run_whose_chunk_job_was_stopped_fails_only_after_run_stale_seconds_and_says_why(app, db_session,
                                                                                            processes):
    """A chunk job stopped by hand (the RQ dashboard's "stop"): RQ neither retries it nor may the
    supervisor put it back. The run is failed once RUN_STALE_SECONDS pass without progress, naming
    the chunk; a new run bills the rest. The supervisor runs here, its clock moved by `now`."""
    from rq.command import send_stop_job_command

    from app.billing.supervision import supervise_runs
    from app.models.types import utcnow
    from app.queues import get_redis

    small_chunks()
    entity = make_entity()
    seed_contracts(entity, 4 * CHUNK)
    worker = processes.worker("drill-d", FAST, "billing")
    wait_until(lambda: workers_registered(get_redis(), "drill-d"), "the worker to listen")
    run_id = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    job_id = hold_the_lock_mid_run(entity.id, run_id, worker="drill-d")
    send_stop_job_command(get_redis(), job_id)
    wait_until(lambda: Job.fetch(job_id, connection=get_redis()).get_status() == "stopped", "the job to stop")
    db.session.rollback()
    wait_until(lambda: progressed(run_id, 3 * CHUNK), "the worker to bill the other chunks")

    assert supervise_runs().failed == 0  # not stale yet: a new run is still refused
    assert not start_billing_run(entity, AS_OF, "manual", CLI).started
    later = utcnow() + timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 1)
    assert (supervise_runs(now=later).failed, supervise_runs(now=later).requeued) == (1, 0)
    run = run_state(run_id)
    first = int(job_id.rsplit("-", 1)[1])
    assert run.status == "failed" and run.error.startswith(
        f"the job billing contracts #{first}–#{first + CHUNK - 1} was stopped. Its {6 * CHUNK} invoice(s) are kept"), \
        run.error
    assert run.totals == {"EUR": str(db.session.scalar(
        select(func.sum(Invoice.total_amount)).where(Invoice.billing_run_id == run_id)).quantize(Decimal("0.01")))}

    rerun = start_billing_run(entity, AS_OF, "manual", CLI).run.id
    assert wait_until(lambda: ended(rerun), "the new run to end").invoices_created == 2 * CHUNK
    assert_billed_once_without_gaps(entity, 8 * CHUNK)
    assert worker.alive()
