"""Fault drills with real processes: a Redis of the test's own restarted empty in the middle of
delivery, and a worker killed while it hands an e-mail to the SMTP server. Nothing may be lost or
sent twice, and nobody has to act."""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.agents.events import relay_outbox
from app.agents.jobs import relay_job
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.mailsink import MaildirHandler
from app.models import AuditEntry, Collection, Customer, EventHandling, Invoice, InvoiceDelivery, SepaBatchItem
from tests.conftest import MailSink, free_port
from tests.factories import make_contract, make_entity
from tests.processes import RedisServer, wait_until

ADMIN = Actor.system("test")
IBAN = "DE89370400440532013000"


@pytest.fixture
def redis_of_the_test(app, private_redis):
    """The app and every process the test starts use the test's own Redis, which it may restart empty."""
    saved = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = private_redis.url
    yield private_redis
    app.config["REDIS_URL"] = saved


def worker_env(redis: RedisServer, mail_port: int, **env: str) -> dict[str, str]:
    return {"REDIS_URL": redis.url, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mail_port), **env}


def bill(contracts: int, sepa_every: int = 2):
    """Invoices for `contracts` customers; every `sepa_every`-th pays by SEPA direct debit."""
    entity = make_entity(locale="de_DE", finance_email="finance@example.com")
    entity.sepa_creditor_id, entity.iban, entity.bic = "DE98ZZZ09999999999", "DE02120300000000202051", "BYLADEM1001"
    for n in range(1, contracts + 1):
        make_contract(entity, f"C-{n}", start=date(2026, 11, 1), customer=f"Customer {n}")
        if n % sepa_every == 0:
            customer = db.session.scalar(select(Customer).where(Customer.name == f"Customer {n}"))
            customer.payment_method, customer.iban = "sepa_debit", IBAN
            customer.mandate_reference, customer.mandate_date = f"MANDATE-{n}", date(2026, 1, 15)
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    return run


class SlowHandler(MaildirHandler):
    """Keeps every message, but takes a moment for each, as a real server over a network does."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(0.2)
        return await super().handle_DATA(server, session, envelope)


def test_redis_restarted_empty_mid_delivery_loses_nothing_and_doubles_nothing(app, db_session, redis_of_the_test,
                                                                              processes, tmp_path):
    """The drill that lost 16,964 e-mails: Redis stops while invoices are being e-mailed and comes back
    empty. Every invoice is e-mailed exactly once and every SEPA invoice is in its batch, with only the
    processes acting: the worker rides out the outage and the relay's watchdog enqueues what was lost."""
    from aiosmtpd.controller import Controller

    contracts = 24
    run = bill(contracts)
    mailbox = tmp_path / "mailbox"
    smtp = Controller(SlowHandler(mailbox), hostname="127.0.0.1", port=free_port())
    smtp.start()
    sink = MailSink(mailbox, smtp.port)
    app.config["EVENT_HANDLING_GRACE_SECONDS"] = 0
    redis = redis_of_the_test
    worker = processes.worker("drill", worker_env(redis, smtp.port, REDIS_RETRY_MAX_SECONDS="1"),
                              "delivery", "collection", "default")
    try:
        assert relay_outbox().jobs == 2 * contracts
        wait_until(lambda: len(sink.messages()) >= 4, "the first e-mails", every=0.05)
        redis.stop()  # every queued delivery and collection job is gone with it
        worker.wait_for_output("Redis is unreachable")
        redis.start()
        assert Queue("delivery", connection=redis.client()).count == 0

        def all_acted_on() -> bool:
            relay_job()  # what the scheduler runs every minute
            db.session.expire_all()
            return db.session.scalar(select(func.count()).select_from(EventHandling)
                                     .where(EventHandling.status != "done")) == 0

        wait_until(all_acted_on, "every agent to act on every invoice", every=1.0)
        assert worker.alive(), "the worker rode out the outage"
    finally:
        app.config["EVENT_HANDLING_GRACE_SECONDS"] = 120
        smtp.stop()
    output = worker.output()
    invoices = db.session.scalars(select(Invoice)).all()
    assert len(invoices) == contracts
    sent = Counter(m["To"] for m in sink.messages())
    assert sent == Counter({f"c-{n}@example.com": 1 for n in range(1, contracts + 1)}), output
    assert {d.status for d in db.session.scalars(select(InvoiceDelivery))} == {"sent"}
    sepa = [i for i in invoices if i.customer.payment_method == "sepa_debit"]
    assert len(sepa) == contracts // 2
    in_batch = Counter(db.session.scalars(select(SepaBatchItem.invoice_id)))
    assert in_batch == Counter({i.id: 1 for i in sepa})
    assert db.session.scalar(select(func.count()).select_from(Collection)) == contracts
    requeued = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "workflow.step_requeued")).all()
    assert requeued and {e.billing_run_id for e in requeued} == {run.id}


class HoldingHandler(MaildirHandler):
    """Keeps the message, then does not answer until the test says so: the sender is mid-send, and the
    customer will get the e-mail whatever happens to the sender."""

    def __init__(self, directory: Path):
        super().__init__(directory)
        self.receiving, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        self.receiving.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        return answer


def test_a_worker_killed_mid_send_never_sends_twice_and_shows_outcome_unknown(app, db_session, redis_of_the_test,
                                                                             processes, tmp_path):
    """The worker dies after handing the e-mail over and before the server answered: the customer may
    have it. RQ retries the abandoned job; the retry finds the attempt in flight and sends nothing; the
    delivery says "outcome unknown"."""
    from aiosmtpd.controller import Controller

    bill(1, sepa_every=99)
    mailbox = tmp_path / "mailbox"
    handler = HoldingHandler(mailbox)
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    sink = MailSink(mailbox, smtp.port)
    redis = redis_of_the_test
    env = worker_env(redis, smtp.port, DELIVERY_IN_FLIGHT_SECONDS="1")
    worker = processes.worker("sender", env, "delivery")
    try:
        relay_outbox()
        assert handler.receiving.wait(180), "the worker never reached the SMTP server"
        worker.kill_hard()  # kill -9 while the server holds the message
        handler.release.set()
        assert len(sink.messages()) == 1  # the server kept the message: it was delivered
        # RQ notices the abandoned job and retries it (it has retries left), as it did after 15 minutes.
        connection = redis.client()
        queue = Queue("delivery", connection=connection)
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 24 * 3600)
        job_id, = [j for j in connection.zrange("rq:scheduled:delivery", 0, -1)] or queue.job_ids
        job = Job.fetch(job_id.decode() if isinstance(job_id, bytes) else job_id, connection=connection)
        assert job.retries_left == 2  # one retry taken: RQ did retry it
        queue.enqueue_job(job)  # its retry time has come
        retry = processes.worker("retry", env, "delivery", "--burst")
        wait_until(lambda: not retry.alive(), "the retrying worker to work off the queue")
    finally:
        handler.release.set()
        smtp.stop()
    output = worker.output() + retry.output()
    assert len(sink.messages()) == 1, output
    delivery = db.session.scalar(select(InvoiceDelivery))
    assert delivery.status == "unknown" and delivery.attempts == 1, output
    assert "Check with the customer, then press Resend" in delivery.error
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "invoice.delivery_unknown")) == 1


def test_smtp_down_then_up_during_delivery_every_invoice_is_emailed_once(app, db_session, redis_of_the_test,
                                                                         processes, tmp_path):
    """The SMTP server refuses connections while a real worker e-mails a run's invoices, then comes
    back. Nobody acts: the agent's retry (after its first `retry_minutes`, 1) sends each invoice,
    once."""
    contracts = 12
    bill(contracts, sepa_every=99)
    sink = MailSink(tmp_path / "mailbox", free_port())  # not started: the server is down
    worker = processes.worker("mailer", worker_env(redis_of_the_test, sink.port), "delivery")
    try:
        assert relay_outbox().jobs == 2 * contracts  # delivery and collection subscribe to invoice.issued

        def statuses() -> Counter:
            db.session.expire_all()
            found = Counter(d.status for d in db.session.scalars(select(InvoiceDelivery)))
            db.session.rollback()
            return found

        wait_until(lambda: statuses() == Counter(retrying=contracts), "every first attempt to fail", every=0.2)
        sink.start()
        wait_until(lambda: statuses() == Counter(sent=contracts), "every invoice to be e-mailed", every=0.5)
    finally:
        sink.stop()
    sent = Counter(m["To"] for m in sink.messages())
    assert sent == Counter({f"c-{n}@example.com": 1 for n in range(1, contracts + 1)}), worker.output()
    assert {d.attempts for d in db.session.scalars(select(InvoiceDelivery))} == {2}
    assert worker.alive()
