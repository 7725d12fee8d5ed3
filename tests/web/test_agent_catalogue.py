"""Agents > Definitions as a catalogue, Run now / Test for agents with runs of their own, and a custom agent seen
only in its own legal entity."""
import os
import re
import subprocess
import sys

from sqlalchemy import select

from app.extensions import db
from app.models import AgentDefinition, AgentRun
from tests.conftest import ROOT
from tests.factories import make_entity


def _entities(app, *codes):
    with app.app_context():
        for code in codes:
            make_entity(code)
        db.session.commit()


def _rows(html: str) -> list[str]:
    table = html.split('id="agent-catalogue"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)


def test_the_catalogue_lists_every_agent_with_mode_triggers_status_and_last_run(app, admin_client):
    _entities(app, "DE01")
    with app.app_context():
        db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "payment_collection")).enabled = False
        db.session.commit()
    html = admin_client.get("/agents").get_data(as_text=True)
    rows = _rows(html)
    assert [re.search(r"<code>([a-z_]+)</code>", r).group(1) for r in rows][:4] == [
        "billing_run", "invoice_delivery", "payment_collection", "reconciliation"]
    billing, delivery, collection, reconciliation = rows[:4]
    assert "Built-in" in billing and "Code" in billing and "never run for DE01" in billing
    assert "A schedule fires" in billing and "<code>schedule.triggered</code>" in billing
    assert "acts on events" in delivery  # no runs of its own
    assert "disabled" in collection and "Enable it</a> on its Configuration tab" in collection
    assert "enabled" in reconciliation and "never run for DE01" in reconciliation
    assert "No custom agents for DE01 yet" in html and 'href="/agents/new"' in html


def test_run_now_queues_a_run_that_a_worker_does_and_the_row_follows_it_live(app, client_as):
    _entities(app, "DE01")
    accountant = client_as("accountant")
    page = accountant.get("/agents/reconciliation").get_data(as_text=True)
    assert "Run now" in page and ">Test</button>" in page
    response = accountant.post("/agents/reconciliation/run-now", headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    with app.app_context():
        run = db.session.scalar(select(AgentRun))
        run_id, status, trigger = run.id, run.status, run.trigger
    assert (status, trigger) == ("queued", "manual") and "waiting for a worker" in body
    assert f'hx-get="/agents/reconciliation/agent-runs/{run_id}"' in body and 'hx-trigger="every 2s"' in body
    result = subprocess.run([sys.executable, "worker.py", "--burst", "default"], cwd=ROOT, env={**os.environ},
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    row = accountant.get(f"/agents/reconciliation/agent-runs/{run_id}", headers={"HX-Request": "true"})
    text = row.get_data(as_text=True)
    assert "0 matched, 0 partially, 0 waiting" in text and "hx-trigger" not in text  # final: it stops asking
    runs_tab = accountant.get("/agents/reconciliation/runs").get_data(as_text=True)
    assert "0 matched, 0 partially, 0 waiting" in runs_tab and "accountant@example.com" in runs_tab
    audit = accountant.get("/agents/reconciliation/audit").get_data(as_text=True)
    assert f"A run (manual) asked for by accountant@example.com (run {run_id})" in audit
    assert f"Run {run_id} succeeded: 0 matched, 0 partially, 0 waiting" in audit


def test_a_viewer_cannot_run_and_an_event_only_agent_has_no_run_button(app, client_as):
    _entities(app, "DE01")
    viewer = client_as("viewer")
    assert viewer.post("/agents/reconciliation/run-now").status_code == 403
    admin = client_as("admin")
    page = admin.get("/agents/invoice_delivery").get_data(as_text=True)
    assert "Run now" not in page
    assert admin.post("/agents/invoice_delivery/run-now").status_code == 404
    runs = admin.get("/agents/invoice_delivery/runs").get_data(as_text=True)
    assert "acts on events, not in runs of its own" in runs


def test_a_disabled_agent_offers_only_a_test_run(app, admin_client):
    _entities(app, "DE01")
    with app.app_context():
        db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "reconciliation")).enabled = False
        db.session.commit()
    page = admin_client.get("/agents/reconciliation").get_data(as_text=True)
    assert "Run now</button>" not in page and ">Test</button>" in page
    refused = admin_client.post("/agents/reconciliation/run-now", headers={"HX-Request": "true"})
    assert refused.status_code == 409 and "is disabled" in refused.get_data(as_text=True)
    assert admin_client.post("/agents/reconciliation/test", headers={"HX-Request": "true"}).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(AgentRun.trigger)) == "test"


def test_another_entitys_custom_agent_and_its_runs_are_not_found(app, client_in):
    _entities(app, "DE01", "DE02")
    with app.app_context():
        from app.records.entities import get_legal_entity_by_code

        other = get_legal_entity_by_code("DE02")
        agent = AgentDefinition(key="custom_de02_secret", name="DE02 secret report", custom=True,
                                template="ar_aging_reporter", legal_entity_id=other.id, trigger_events=["manual.trigger"],
                                configuration={}, enabled=True, version=1)
        db.session.add(agent)
        db.session.flush()
        db.session.add(AgentRun(agent_id=agent.id, legal_entity_id=other.id, trigger="manual", status="succeeded",
                                requested_by="x", summary="DE02 summary"))
        db.session.commit()
        run_id = db.session.scalar(select(AgentRun.id))
    for role in ("viewer", "admin"):
        client = client_in("DE01", role)
        for path in ("/agents/custom_de02_secret", "/agents/custom_de02_secret/runs",
                     "/agents/custom_de02_secret/versions", f"/agents/custom_de02_secret/agent-runs/{run_id}"):
            assert client.get(path).status_code == 404, (role, path)
        assert "DE02 secret report" not in client.get("/agents").get_data(as_text=True)
    assert client_in("DE02", "viewer").get("/agents/custom_de02_secret").status_code == 200
