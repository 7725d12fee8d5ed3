"""What protects the RQ dashboard at /rq (app/web/ops/rq.py); a real Redis and real RQ workers.

The browser's side (what an admin sees, what runs) is tests/browser/test_rq_dashboard.py.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from ipaddress import ip_address

import pytest
from aiosmtpd.controller import Controller
from markupsafe import escape
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.agents.service import enqueue_agent_event
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Event, Invoice, InvoiceDelivery
from app.queues import get_redis
from tests.conftest import ROOT, free_port
from tests.factories import make_contract, make_entity

SCRIPT_TAG = re.compile(r"<script\b[^>]*>")


@pytest.fixture
def redis(app):
    with app.app_context():
        yield get_redis()


@pytest.fixture
def failed_job(redis):
    """A job of the queue `default` that a real worker failed."""
    queue = Queue("default", connection=redis)
    job = queue.enqueue(ip_address, "not an address")
    SimpleWorker([queue], connection=redis).work(burst=True)
    assert job.get_status(refresh=True) == "failed"
    return job


def dashboard_pages(job_id: str) -> list[str]:
    return ["/rq/", "/rq/0/view/workers", "/rq/0/view/jobs", "/rq/0/view/jobs/default/failed/8/asc/1",
            f"/rq/0/view/job/{job_id}"]


def test_dashboard_pages_run_only_the_scripts_they_name_with_a_fresh_nonce(admin_client, failed_job):
    nonces = set()
    for url in dashboard_pages(failed_job.id):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        policy = dict(d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";"))
        nonce, = re.fullmatch(r"'nonce-([\w-]{16,})' 'unsafe-eval'", policy["script-src"]).groups()
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", url
        scripts = SCRIPT_TAG.findall(response.get_data(as_text=True))
        runnable = [tag for tag in scripts if 'type="text/template"' not in tag]
        assert runnable and all(f'nonce="{nonce}"' in tag for tag in runnable), (url, runnable)
        nonces.add(nonce)
    assert len(nonces) == len(dashboard_pages(failed_job.id))  # one per response


def test_the_dashboards_client_side_templates_escape_every_value(admin_client, failed_job):
    # Underscore templates: <%= value %> inserts the value as markup, <%- value %> as text.
    for url in dashboard_pages(failed_job.id):
        page = admin_client.get(url).get_data(as_text=True)
        assert "<%=" not in page, url


def test_requeue_all_refuses_a_get_and_requeues_nothing(admin_client, failed_job):
    # A GET is what any page can make an admin's browser send (a link, an image), cookies and all.
    response = admin_client.get("/rq/requeue/default")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert failed_job.get_status(refresh=True) == "failed"
    response = admin_client.post("/rq/requeue/default")
    assert response.status_code == 200 and response.get_json() == {"status": "OK", "count": 1}
    assert failed_job.get_status(refresh=True) == "queued"


def _deleted(job, redis) -> bool:
    return not Job.exists(job.id, connection=redis)


def _requeued(job, redis) -> bool:
    return job.get_status(refresh=True) == "queued"


def _no_failed_jobs(job, redis) -> bool:
    return FailedJobRegistry("default", connection=redis).get_job_count() == 0


@pytest.mark.parametrize("url, done", [
    ("/rq/job/{id}/delete", _deleted),
    ("/rq/job/{id}/requeue", _requeued),
    ("/rq/requeue/default", _requeued),
    ("/rq/queue/default/failed/empty", _no_failed_jobs),
])
def test_an_action_without_our_csrf_token_is_refused_and_does_nothing(admin_client, failed_job, redis, url, done):
    url = url.format(id=failed_job.id)
    assert admin_client.post(url, csrf=False).status_code == 400
    assert not done(failed_job, redis)
    assert admin_client.post(url).status_code == 200
    assert done(failed_job, redis)


def test_compact_without_our_csrf_token_is_refused(admin_client, redis):
    queue = Queue("default", connection=redis)
    job = queue.enqueue(ip_address, "127.0.0.1")
    redis.delete(job.key)  # its id stays in the queue: compacting removes it
    assert admin_client.post("/rq/queue/default/compact", csrf=False).status_code == 400
    assert queue.count == 1
    assert admin_client.post("/rq/queue/default/compact").status_code == 200
    assert queue.count == 0


@pytest.mark.parametrize("method, url", [
    ("get", "/rq/0/view/job/no-such-job"),
    ("get", "/rq/0/data/job/no-such-job.json"),
    ("post", "/rq/job/no-such-job/requeue"),
    ("post", "/rq/job/no-such-job/delete"),
])
def test_an_unknown_job_is_not_found(admin_client, method, url):
    assert getattr(admin_client, method)(url).status_code == 404


# ---------------------------------------------------------------- what a failed delivery leaves in RQ
EMAIL = '"<img/src/onerror=alert(document.domain)>"@x.example'  # a valid address, quoted local part


class RefusingRecipients:
    """An SMTP server that refuses every recipient, quoting the address as Postfix does."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"


@pytest.fixture
def refusing_smtp():
    controller = Controller(RefusingRecipients(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def test_a_refused_recipient_reaches_rq_as_ids_and_our_invoice_page_as_text(app, admin_client, redis, refusing_smtp):
    with app.app_context():
        entity = make_entity()
        contract = make_contract(entity, "C-1", start=date(2026, 11, 1))
        contract.customer.email = EMAIL
        db.session.commit()
        run = start_billing_run(entity, date(2026, 11, 26), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        invoice_id, = db.session.scalars(select(Invoice.id)).all()
        issued = db.session.scalar(select(Event.id).where(Event.type == "invoice.issued"))
        job_id = enqueue_agent_event("invoice_delivery", issued, retry=None)  # as the relay does, its last attempt

    env = {**os.environ, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(refusing_smtp.port)}
    worker = subprocess.run([sys.executable, "worker.py", "--burst", "delivery"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    # RQ (its Redis, the dashboard, the worker's log) has the ids, never the address.
    job = admin_client.get(f"/rq/0/data/job/{job_id}.json").get_json()
    assert job["status"] == "failed"
    assert f"DeliveryFailed: delivery 1 of invoice {invoice_id} failed" in job["exc_info"]
    for text in (job["exc_info"], job["description"], worker.stdout + worker.stderr):
        assert "x.example" not in text and "onerror" not in text
    # Our tables and our (escaped) invoice page keep the server's answer.
    with app.app_context():
        delivery, = db.session.scalars(select(InvoiceDelivery)).all()
        assert delivery.status == "failed" and EMAIL in delivery.error and "User unknown" in delivery.error
    page = admin_client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert str(escape(EMAIL)) in page and EMAIL not in page


@pytest.mark.parametrize("url", ["/rq/5/view/queues", "/rq/1/data/queues.json", "/rq/7/view/job/x"])
def test_an_unknown_redis_instance_is_not_found(admin_client, url):
    assert admin_client.get(url).status_code == 404


def test_actions_on_a_job_or_queue_that_cannot_take_them_are_conflicts_not_errors(admin_client, redis):
    queue = Queue("default", connection=redis)
    job = queue.enqueue(ip_address, "127.0.0.1")  # queued, not failed: it cannot be requeued
    assert admin_client.post(f"/rq/job/{job.id}/requeue").status_code == 409
    assert admin_client.post("/rq/queue/no-such-queue/compact").status_code in (200, 409)
    assert queue.count == 1


def test_the_dashboard_leads_back_to_arbill_and_every_page_has_an_icon(admin_client):
    page = admin_client.get("/rq/", follow_redirects=True).get_data(as_text=True)
    assert 'id="back-to-arbill"' in page and 'href="/"' in page
    home = admin_client.get("/").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in home
    icon = admin_client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.get_data(as_text=True).startswith("<svg")
