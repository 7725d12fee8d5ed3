"""Agents > Scheduled Jobs: the list, the form with its preview, enable/disable/delete, the schedule page."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, LegalEntity, ScheduledJob, ScheduleFire
from app.models.types import utcnow
from app.schedules.cron import Preset
from app.schedules.service import ScheduleInput, create_schedule, missed_slots
from tests.factories import make_entity

ROLES = ("viewer", "accountant", "admin")
EDITORS = ("accountant", "admin")
HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


@pytest.fixture
def entity(app, users):
    """DE01 in Europe/Berlin; returns its id."""
    with app.app_context():
        entity_id = make_entity("DE01").id
        db.session.commit()
    return entity_id


def add_schedule(app, preset: Preset | None = None, name: str = "Weekly billing", code: str = "DE01") -> int:
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == code))
        schedule = create_schedule(entity, ScheduleInput("billing_run", name, preset or Preset("weekly", "06:00", (0,))),
                                   Actor.system("test"))
        db.session.commit()
        return schedule.id


def schedules() -> list[ScheduledJob]:
    return list(db.session.scalars(select(ScheduledJob).order_by(ScheduledJob.id)))


def scheduled_job_ids(app) -> set[str]:
    from rq_scheduler import Scheduler

    from app.queues import get_redis

    with app.app_context():
        return {job.id for job in Scheduler(connection=get_redis()).get_jobs()}


def form(**overrides) -> dict:
    data = {"agent_key": "billing_run", "name": "", "kind": "weekly", "time": "06:00", "weekdays": ["0"],
            "day_of_month": "1", "cron": ""}
    data.update(overrides)
    return data


def audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# ------------------------------------------------------------------ pages × roles
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_list_and_the_schedule_page(app, client_as, entity, role):
    schedule_id = add_schedule(app)
    client = client_as(role)
    listing = client.get("/schedules")
    assert listing.status_code == 200 and "Every Monday at 06:00 Europe/Berlin" in listing.get_data(as_text=True)
    page = client.get(f"/schedules/{schedule_id}")
    assert page.status_code == 200 and "Weekly billing" in page.get_data(as_text=True)
    assert client.get("/schedules/999").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_new_edit_and_delete_pages_are_for_accountants_and_admins(app, client_as, entity, role):
    schedule_id = add_schedule(app)
    client = client_as(role)
    expected = 403 if role == "viewer" else 200
    for url in ("/schedules/new", f"/schedules/{schedule_id}/edit", f"/schedules/{schedule_id}/delete"):
        assert client.get(url).status_code == expected, url


def test_viewers_posts_are_forbidden_and_change_nothing(app, client_as, entity):
    schedule_id = add_schedule(app)
    client = client_as("viewer")
    for url, data in (("/schedules/new", form()), (f"/schedules/{schedule_id}/edit", form(time="07:00")),
                      ("/schedules/preview", form()), (f"/schedules/{schedule_id}/disable", {}),
                      (f"/schedules/{schedule_id}/enable", {}), (f"/schedules/{schedule_id}/delete", {})):
        assert client.post(url, data=data).status_code == 403, url
    with app.app_context():
        (schedule,) = schedules()
        assert schedule.enabled and schedule.cron == "0 6 * * 1"
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.subject_type == "schedule",
                                                          AuditEntry.actor_type == "user")).all() == []


def test_viewers_see_no_buttons(app, client_as, entity):
    schedule_id = add_schedule(app)
    for url in ("/schedules", f"/schedules/{schedule_id}"):
        html = client_as("viewer").get(url).get_data(as_text=True)
        assert "/schedules/new" not in html and "/edit" not in html
        assert ">Disable</button>" not in html and ">Delete</button>" not in html


def test_the_navigation_links_to_scheduled_jobs(client_as, entity):
    html = client_as("viewer").get("/").get_data(as_text=True)
    assert '<a href="/schedules">Scheduled Jobs</a>' in html


# ------------------------------------------------------------------ empty states
def test_empty_list_suggests_a_schedule_and_offers_new_to_accountants(client_as, entity):
    html = client_as("accountant").get("/schedules").get_data(as_text=True)
    assert "No schedules yet — e.g. every Monday at 06:00" in html
    assert 'href="/schedules/new"' in html and "New schedule" in html
    viewer = client_as("viewer").get("/schedules").get_data(as_text=True)
    assert "No schedules yet — e.g. every Monday at 06:00" in viewer and 'href="/schedules/new"' not in viewer


def test_without_a_legal_entity_the_pages_say_what_to_do(app, client_as, users):
    client = client_as("admin")
    assert "No legal entity yet" in client.get("/schedules").get_data(as_text=True)
    assert "No legal entity yet" in client.get("/schedules/new").get_data(as_text=True)
    response = client.post("/schedules/new", data=form())
    assert response.status_code == 409
    with app.app_context():
        assert schedules() == []


# ------------------------------------------------------------------ creating through the form
@pytest.mark.parametrize("data, cron, first_business_day, words", [
    (form(kind="weekly", time="06:00", weekdays=["0"]), "0 6 * * 1", False, "Every Monday at 06:00 Europe/Berlin"),
    (form(kind="weekly", time="06:00", weekdays=["0", "2", "4"]), "0 6 * * 1,3,5", False,
     "Every Monday, Wednesday and Friday at 06:00 Europe/Berlin"),
    (form(kind="daily", time="07:30", weekdays=[]), "30 7 * * *", False, "Every day at 07:30 Europe/Berlin"),
    (form(kind="monthly", time="06:00", day_of_month="15"), "0 6 15 * *", False,
     "Monthly on day 15 at 06:00 Europe/Berlin"),
    (form(kind="first_business_day", time="06:00"), "0 6 1-3 * 1-5", True,
     "First business day of the month at 06:00 Europe/Berlin"),
    (form(kind="cron", cron="15 4 * * 2"), "15 4 * * 2", False, "Every Tuesday at 04:15 Europe/Berlin"),
])
def test_each_preset_creates_its_cron_and_redirects_to_the_list(app, client_as, entity, data, cron,
                                                               first_business_day, words):
    client = client_as("accountant")
    response = client.post("/schedules/new", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/schedules"
    with app.app_context():
        (schedule,) = schedules()
        assert schedule.cron == cron and schedule.first_business_day is first_business_day
        assert schedule.preset == data["kind"] and schedule.enabled
        assert schedule.name == words  # no name given: the schedule in words
        assert schedule.legal_entity.code == "DE01" and schedule.agent.key == "billing_run"
        (entry,) = audit("schedule.created")
        assert entry.actor_label == "accountant@example.com" and entry.subject_id == schedule.id
        schedule_id = schedule.id
    html = client.get("/schedules").get_data(as_text=True)
    assert f"Schedule “{words}” created: {words}; next fire" in html  # the flash
    assert words in html and f'href="/schedules/{schedule_id}"' in html
    # The scheduler holds the schedule's next fire.
    assert f"schedule-{schedule_id}" in scheduled_job_ids(app)


def test_a_name_is_kept_and_the_form_is_prefilled_on_edit(app, client_as, entity):
    client = client_as("admin")
    client.post("/schedules/new", data=form(name="Monthly close", kind="monthly", day_of_month="15", time="05:45"))
    with app.app_context():
        (schedule,) = schedules()
        assert schedule.name == "Monthly close" and schedule.cron == "45 5 15 * *"
    html = client.get(f"/schedules/{schedule.id}/edit").get_data(as_text=True)
    assert 'value="Monthly close"' in html and 'value="monthly" checked' in html
    assert 'name="day_of_month" value="15"' in html and 'name="time" value="05:45"' in html


@pytest.mark.parametrize("data, message", [
    (form(kind="cron", cron="61 * * * *"), "is not a valid cron expression"),
    (form(kind="cron", cron="every monday"), "it needs 5 fields"),
    (form(kind="weekly", weekdays=[]), "choose at least one weekday"),
    (form(kind="daily", time="25:00"), "is not a time of day (use HH:MM, e.g. 06:00)"),
    (form(kind="daily", time="six"), "is not a time of day"),
    (form(kind="monthly", day_of_month="31"), "day of month must be 1-28"),
    (form(kind="monthly", day_of_month="x"), "is not a whole number"),
    (form(kind="hourly"), "choose how often the schedule fires"),
    (form(agent_key="invoice_delivery"), "choose an agent that can be scheduled"),
    (form(name="x" * 201), "at most 200 characters"),
    (form(name="Weekly\r\nbilling"), "the name contains a line break (CR) at character 7"),
    (form(kind="cron", cron=",".join(str(m) for m in range(60)) + " * * * *"),
     "the cron expression is 177 characters long; at most 120 fit"),
])
def test_invalid_input_comes_back_inline_with_422_and_nothing_is_saved(app, client_as, entity, data, message):
    response = client_as("accountant").post("/schedules/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'class="error"' in html
    assert "<form" in html  # the form again, with what was entered
    with app.app_context():
        assert schedules() == [] and audit("schedule.created") == []
    assert not any(job_id.startswith("schedule-") for job_id in scheduled_job_ids(app))


def test_the_form_states_the_time_zone_and_previews_the_default(client_as, entity):
    html = client_as("accountant").get("/schedules/new").get_data(as_text=True)
    assert "in the legal entity's time zone (Europe/Berlin)" in html
    assert 'hx-post="/schedules/preview"' in html and 'hx-trigger="change, input delay:400ms"' in html
    assert 'value="weekly" checked' in html and 'name="weekdays" value="0" checked' in html
    assert '<option value="billing_run" selected>Billing Run Agent</option>' in html
    assert "invoice_delivery" not in html  # cannot be scheduled: no schedule.triggered trigger
    # The preview is there on a full load too: five Mondays at 06:00.
    preview = html.split('id="schedule-preview"')[1]
    assert len(re.findall(r"<li><time[^>]*>Mon \d{4}-\d\d-\d\d 06:00 \+0[12]:00</time></li>", preview)) == 5


# ------------------------------------------------------------------ the preview
def test_preview_lists_five_local_times_across_the_dst_change(client_as, entity):
    response = client_as("accountant").post("/schedules/preview", headers=HX,
                                            data=form(kind="daily", time="06:00", start="2026-03-27T00:00"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and "HX-Request" in response.headers["Vary"]
    times = re.findall(r"<time datetime=\"([^\"]+)\">([^<]+)</time>", html)
    assert [label for _iso, label in times] == [
        "Fri 2026-03-27 06:00 +01:00", "Sat 2026-03-28 06:00 +01:00", "Sun 2026-03-29 06:00 +02:00",
        "Mon 2026-03-30 06:00 +02:00", "Tue 2026-03-31 06:00 +02:00"]
    assert times[2][0] == "2026-03-29T06:00:00+02:00"
    assert "Every day at 06:00 Europe/Berlin" in html


def test_preview_from_now_shows_five_fires_at_the_chosen_time(client_as, entity):
    html = client_as("admin").post("/schedules/preview", headers=HX,
                                   data=form(kind="daily", time="06:00")).get_data(as_text=True)
    labels = re.findall(r"<time [^>]*>([^<]+)</time>", html)
    assert len(labels) == 5 and all(" 06:00 " in label for label in labels)


def test_preview_of_the_first_business_day_skips_weekends(client_as, entity):
    html = client_as("accountant").post("/schedules/preview", headers=HX, data=form(
        kind="first_business_day", time="06:00", start="2026-01-01T12:00")).get_data(as_text=True)
    labels = re.findall(r"<time [^>]*>([^<]+)</time>", html)
    # Feb 2026 starts on a Sunday, Mar on a Sunday, May on a Friday, Aug on a Saturday.
    assert labels == ["Mon 2026-02-02 06:00 +01:00", "Mon 2026-03-02 06:00 +01:00", "Wed 2026-04-01 06:00 +02:00",
                      "Fri 2026-05-01 06:00 +02:00", "Mon 2026-06-01 06:00 +02:00"]


@pytest.mark.parametrize("data, message", [
    (form(kind="cron", cron="0 6 * *"), "it needs 5 fields"),
    (form(kind="weekly", weekdays=[]), "choose at least one weekday"),
    (form(start="tomorrow"), "is not an ISO 8601 date-time"),
])
def test_preview_explains_what_cannot_be_scheduled(client_as, entity, data, message):
    response = client_as("accountant").post("/schedules/preview", headers=HX, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # swapped into the form by HTMX
    assert "Cannot schedule this:" in html and message in html and "<time" not in html


# ------------------------------------------------------------------ editing
def test_editing_changes_the_cron_is_audited_and_resyncs(app, client_as, entity):
    schedule_id = add_schedule(app)
    client = client_as("accountant")
    response = client.post(f"/schedules/{schedule_id}/edit", data=form(name="Weekly billing", kind="daily",
                                                                       time="07:30", weekdays=[]))
    assert response.status_code == 303
    with app.app_context():
        schedule = db.session.get(ScheduledJob, schedule_id)
        assert schedule.cron == "30 7 * * *" and schedule.preset == "daily"
        (entry,) = audit("schedule.updated")
        assert entry.actor_label == "accountant@example.com"
        assert entry.details["changes"]["cron"] == {"old": "0 6 * * 1", "new": "30 7 * * *"}
    assert f"schedule-{schedule_id}" in scheduled_job_ids(app)
    bad = client.post(f"/schedules/{schedule_id}/edit", data=form(kind="cron", cron="nope"))
    assert bad.status_code == 422 and "is not a cron expression" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ScheduledJob, schedule_id).cron == "30 7 * * *"


# ------------------------------------------------------------------ enable, disable, delete
def test_disable_enable_and_delete_are_audited_and_reach_the_scheduler(app, client_as, entity):
    client = client_as("accountant")
    client.post("/schedules/new", data=form(name="Weekly billing"))
    with app.app_context():
        (schedule,) = schedules()
        schedule_id = schedule.id
    job_id = f"schedule-{schedule_id}"
    assert job_id in scheduled_job_ids(app)

    response = client.post(f"/schedules/{schedule_id}/disable", data={"back": "detail"})
    assert response.status_code == 303 and response.headers["Location"] == f"/schedules/{schedule_id}"
    assert job_id not in scheduled_job_ids(app)
    html = client.get(f"/schedules/{schedule_id}").get_data(as_text=True)
    assert "Schedule “Weekly billing” disabled." in html and "badge-disabled" in html and ">Enable</button>" in html

    response = client.post(f"/schedules/{schedule_id}/enable", data={})
    assert response.status_code == 303 and response.headers["Location"] == "/schedules"
    assert job_id in scheduled_job_ids(app)

    response = client.post(f"/schedules/{schedule_id}/delete", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/schedules"
    assert job_id not in scheduled_job_ids(app)
    with app.app_context():
        assert schedules() == []
        for action in ("schedule.disabled", "schedule.enabled", "schedule.deleted"):
            (entry,) = audit(action)
            assert entry.actor_label == "accountant@example.com" and entry.subject_id == schedule_id, action
    assert "Schedule “Weekly billing” deleted" in client.get("/schedules").get_data(as_text=True)


def test_disabling_twice_says_so_without_a_second_audit_entry(app, client_as, entity):
    schedule_id = add_schedule(app)
    client = client_as("admin")
    client.post(f"/schedules/{schedule_id}/disable")
    client.post(f"/schedules/{schedule_id}/disable")
    assert "was already disabled" in client.get("/schedules").get_data(as_text=True)
    with app.app_context():
        assert len(audit("schedule.disabled")) == 1


def test_delete_asks_first_with_and_without_javascript(app, client_as, entity):
    schedule_id = add_schedule(app)
    client = client_as("accountant")
    listing = client.get("/schedules").get_data(as_text=True)
    assert f'hx-post="/schedules/{schedule_id}/delete"' in listing and "hx-confirm=" in listing
    # Without JavaScript the same button opens the confirmation page.
    assert f'method="get" action="/schedules/{schedule_id}/delete"' in listing
    page = client.get(f"/schedules/{schedule_id}/delete").get_data(as_text=True)
    assert "Delete the schedule “Weekly billing”?" in page and f'action="/schedules/{schedule_id}/delete"' in page
    response = client.post(f"/schedules/{schedule_id}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/schedules"
    with app.app_context():
        assert schedules() == []


# ------------------------------------------------------------------ the list: next, last, missed
def _fire_with_run(app, schedule_id: int) -> tuple[int, int]:
    """A fire of the schedule that started a billing run, run inline: (run id, run number)."""
    with app.app_context():
        schedule = db.session.get(ScheduledJob, schedule_id)
        result = start_billing_run(schedule.legal_entity, date.today(), "schedule", Actor.for_schedule(schedule),
                                   enqueue=False, trigger_ref=f"schedule:{schedule_id}:test")
        execute_run(result.run.id, inline=True)
        fired_at = utcnow() - timedelta(hours=1)
        db.session.add(ScheduleFire(scheduled_job_id=schedule_id, slot=fired_at.replace(second=0, microsecond=0),
                                    fired_at=fired_at, billing_run_id=result.run.id, outcome="Run #1 started"))
        db.session.commit()
        return result.run.id, result.run.number


def test_the_list_shows_when_next_fire_and_the_last_fires_run(app, client_as, entity):
    schedule_id = add_schedule(app)
    run_id, number = _fire_with_run(app, schedule_id)
    html = client_as("viewer").get("/schedules").get_data(as_text=True)
    row = html.split(f'id="schedule-{schedule_id}"')[1].split("</tr>")[0]
    assert "Every Monday at 06:00 Europe/Berlin" in row and "Billing Run Agent" in row and "badge-active" in row
    assert re.search(r"Mon \d{4}-\d\d-\d\d 06:00 \+0[12]:00", row)  # the next fire, local time
    assert f'<a href="/runs/{run_id}">Run #{number}</a>' in row and "badge-completed" in row
    assert "missed slot" not in html


def test_the_list_warns_about_missed_slots(app, client_as, entity):
    schedule_id = add_schedule(app, Preset("daily", "06:00"), name="Daily billing")
    three_days_ago = utcnow() - timedelta(days=3)
    with app.app_context():
        db.session.execute(update(ScheduledJob).where(ScheduledJob.id == schedule_id)
                           .values(created_at=three_days_ago, updated_at=three_days_ago))
        db.session.commit()
        missed = missed_slots(db.session.get(ScheduledJob, schedule_id))
    assert len(missed) >= 2
    for url in ("/schedules", f"/schedules/{schedule_id}"):
        html = client_as("viewer").get(url).get_data(as_text=True)
        assert f"{len(missed)} missed slots while the scheduler was down:" in html
        assert "— the next fire bills what is due" in html
        assert re.search(r"\d{4}-\d\d-\d\d 06:00 \+0[12]:00", html.split("missed slots")[1])


def test_a_disabled_schedule_has_no_next_fire(app, client_as, entity):
    schedule_id = add_schedule(app)
    client_as("admin").post(f"/schedules/{schedule_id}/disable")
    html = client_as("viewer").get("/schedules").get_data(as_text=True)
    assert "— (disabled)" in html and "badge-disabled" in html


# ------------------------------------------------------------------ the schedule page
def test_the_schedule_page_shows_next_five_and_the_last_fires(app, client_as, entity):
    schedule_id = add_schedule(app)
    run_id, number = _fire_with_run(app, schedule_id)
    html = client_as("viewer").get(f"/schedules/{schedule_id}").get_data(as_text=True)
    assert "Every Monday at 06:00 Europe/Berlin" in html and "<code>0 6 * * 1</code>" in html
    upcoming = html.split("<h2>Next fires</h2>")[1].split("</ol>")[0]
    assert len(re.findall(r"Mon \d{4}-\d\d-\d\d 06:00 \+0[12]:00", upcoming)) == 5
    fires = html.split("<h2>Last fires")[1]
    assert f'<a href="/runs/{run_id}">Run #{number}</a>' in fires and "badge-completed" in fires
    assert "Run #1 started" in fires


def test_a_schedule_of_another_entity_says_whose_it_is(app, client_as, entity):
    with app.app_context():
        make_entity("NL01", country="NL", timezone="Europe/Amsterdam")
        db.session.commit()
    schedule_id = add_schedule(app, code="NL01", name="Amsterdam billing")
    client = client_as("viewer")
    assert "Amsterdam billing" not in client.get("/schedules").get_data(as_text=True)  # DE01 is current
    html = client.get(f"/schedules/{schedule_id}").get_data(as_text=True)
    assert "This schedule belongs to NL01" in html and "Every Monday at 06:00 Europe/Amsterdam" in html


# ------------------------------------------------------------------ escaping
def test_a_schedule_name_is_escaped_everywhere(app, client_as, entity):
    schedule_id = add_schedule(app, name=XSS)
    client = client_as("admin")
    for url in ("/schedules", f"/schedules/{schedule_id}", f"/schedules/{schedule_id}/edit",
                f"/schedules/{schedule_id}/delete"):
        html = client.get(url).get_data(as_text=True)
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
    response = client.post("/schedules/preview", headers=HX, data=form(kind="cron", cron=XSS))
    assert XSS not in response.get_data(as_text=True)
