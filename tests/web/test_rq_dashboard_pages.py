"""What protects the RQ dashboard at /rq (app/web/ops/rq.py); a real Redis and real RQ workers.

The browser's side (what an admin sees, what runs) is tests/browser/test_rq_dashboard.py.
"""
from __future__ import annotations

import re
from ipaddress import ip_address

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry

from app.queues import get_redis

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
