"""Agents > Definitions: the list, the agent's tabs, the Run button, configuration and enable/disable."""
from datetime import date

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.demo import seed_demo
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, BillingRun, User
from tests.confirming import confirm_fields
from tests.factories import make_contract, make_entity

ROLES = ("viewer", "accountant", "admin")
HX = {"HX-Request": "true"}
AGENT_URLS = ("/agents/billing_run", "/agents/billing_run/configuration", "/agents/billing_run/runs")


@pytest.fixture
def demo(app, users):
    """The walkthrough's DE01 (de_DE, Europe/Berlin) with Bolt and Starship Technologies."""
    with app.app_context():
        seed_demo(date.today())
        db.session.commit()


def runs():
    return list(db.session.scalars(select(BillingRun).order_by(BillingRun.id)))


def agent():
    return db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))


def press_run(client, data=None, headers=HX):
    """The Run button: answers with the preview (no run yet)."""
    return client.post("/agents/billing_run/run", data=data or {}, headers=headers)


def press_confirm(client, preview_html, extra=None, headers=HX):
    """The preview's Confirm button."""
    return client.post("/agents/billing_run/run", data={**confirm_fields(preview_html, "run-confirm"), **(extra or {})},
                       headers=headers)


def run_and_confirm(client, data=None, headers=HX):
    preview = press_run(client, data, headers)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    return press_confirm(client, preview.get_data(as_text=True), headers=headers)


def billing_run_inline(app, code="DE01", *, as_of=None, dry_run=False):
    with app.app_context():
        from app.models import LegalEntity

        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == code))
        result = start_billing_run(entity, as_of or date.today(), "manual", Actor.system("test"), dry_run,
                                   enqueue=False)
        execute_run(result.run.id, inline=True)
        return result.run.id


# ------------------------------------------------------------------ the list
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_billing_run_agent_in_the_list(client_as, demo, role):
    response = client_as(role).get("/agents")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/agents/billing_run"' in html and "Billing Run Agent" in html
    assert ">Code</span>" in html
    for event in ("schedule.triggered", "manual.trigger", "billing.run_requested"):
        assert f"<code>{event}</code>" in html
    assert "enabled" in html and "never run for DE01" in html


def test_the_list_shows_the_last_run_of_the_current_entity(app, client_as, demo):
    run_id = billing_run_inline(app)
    html = client_as("viewer").get("/agents").get_data(as_text=True)
    assert f'href="/runs/{run_id}">#1</a>' in html and "badge-completed" in html


def test_the_agents_list_link_shows_in_the_navigation(client_as, demo):
    html = client_as("viewer").get("/").get_data(as_text=True)
    assert 'href="/agents"' in html and 'href="/runs"' in html


# ------------------------------------------------------------------ the agent's tabs
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", AGENT_URLS)
def test_every_tab_is_a_full_page_and_an_htmx_partial(client_as, demo, role, url):
    client = client_as(role)
    full = client.get(url)
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert 'id="tab-panel"' in full.get_data(as_text=True)
    assert "HX-Request" in full.headers["Vary"]
    partial = client.get(url, headers=HX)
    assert partial.status_code == 200 and "HX-Request" in partial.headers["Vary"]
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="tab-panel"' not in body and "<nav class=\"tabs\"" not in body


@pytest.mark.parametrize("role", ROLES)
def test_every_agent_has_its_four_tabs(app, client_as, demo, role):
    client = client_as(role)
    with app.app_context():
        keys = [a.key for a in db.session.scalars(select(AgentDefinition))]
    assert "reconciliation" in keys
    for key in keys:
        for url in (f"/agents/{key}", f"/agents/{key}/configuration", f"/agents/{key}/runs", f"/agents/{key}/audit"):
            assert client.get(url).status_code == 200, url


def test_a_full_load_of_a_tab_marks_that_tab_active(client_as, demo):
    html = client_as("viewer").get("/agents/billing_run/configuration").get_data(as_text=True)
    assert 'class="active" hx-get="/agents/billing_run/configuration"' in html
    assert 'hx-push-url="true"' in html and 'hx-target="#tab-panel"' in html


def test_unknown_agent_is_404(client_as, demo):
    assert client_as("viewer").get("/agents/nope").status_code == 404
    assert client_as("admin").post("/agents/nope/run").status_code == 404


def test_overview_says_what_the_agent_is(client_as, demo):
    html = client_as("viewer").get("/agents/billing_run").get_data(as_text=True)
    assert "Code — pure Python, no LLM calls, zero API cost" in html
    assert "Finds active recurring contracts due for billing" in html
    assert "<code>billing.run_requested</code>" in html


# ------------------------------------------------------------------ the Run button
@pytest.mark.parametrize("role", ("accountant", "admin"))
def test_accountants_and_admins_see_the_run_form(client_as, demo, role):
    html = client_as(role).get("/agents/billing_run").get_data(as_text=True)
    assert 'hx-post="/agents/billing_run/run"' in html
    assert 'name="as_of"' in html and 'name="dry_run"' in html and ">Run</button>" in html
    assert "Arbill Demo GmbH" in html


def test_viewers_see_no_run_button_and_their_post_is_forbidden(app, client_as, demo):
    client = client_as("viewer")
    html = client.get("/agents/billing_run").get_data(as_text=True)
    assert '"/agents/billing_run/run"' not in html and ">Run</button>" not in html
    assert client.post("/agents/billing_run/run", data={}, headers=HX).status_code == 403
    with app.app_context():
        assert runs() == []


def test_run_button_starts_a_pending_enqueued_run_and_links_to_it(app, client_as, demo):
    client = client_as("accountant")
    preview = press_run(client, {"as_of": ""})
    assert preview.status_code == 200 and "<html" not in preview.get_data(as_text=True)
    with app.app_context():
        assert runs() == []  # the Run button shows the preview; only Confirm starts the run
    response = press_confirm(client, preview.get_data(as_text=True))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    with app.app_context():
        (run,) = runs()
        assert run.status == "pending" and not run.dry_run and run.trigger == "manual"
        assert run.actor_label == "accountant@example.com" and run.rq_job_id  # queued for a worker
        from app.queues import get_queue

        assert run.rq_job_id in get_queue("billing").job_ids
        run_id = run.id
    assert f'<a href="/runs/{run_id}">Run #1 started — view progress</a>' in html
    # The result shows the run's row, which polls while the run is pending.
    assert f'hx-get="/runs/{run_id}/row" hx-trigger="every 1s"' in html


def test_a_second_press_answers_already_pending_and_links_to_the_same_run(app, client_as, demo):
    client = client_as("accountant")
    first = press_run(client).get_data(as_text=True)
    run_and_confirm(client)
    response = press_run(client)  # the Run button again: the preview says a run is under way, no Confirm
    html = response.get_data(as_text=True)
    with app.app_context():
        (run,) = runs()
    assert response.status_code == 200
    assert "Run #1 is already pending for DE01" in html and f'href="/runs/{run.id}"' in html
    assert "started — view progress" not in html and 'id="run-confirm"' not in html
    # A Confirm from an earlier preview (another tab) does not start a second run either.
    again = press_confirm(client, first).get_data(as_text=True)
    assert "Run #1 is already pending for DE01" in again and "started — view progress" not in again
    with app.app_context():
        assert len(runs()) == 1


def test_the_dry_run_checkbox_starts_a_dry_run_with_the_given_as_of(app, client_as, demo):
    response = client_as("admin").post("/agents/billing_run/run", data={"as_of": "2026-01-15", "dry_run": "on"},
                                       headers=HX)
    assert "Dry run #1 started" in response.get_data(as_text=True)
    with app.app_context():
        (run,) = runs()
        assert run.dry_run and run.as_of == date(2026, 1, 15) and run.status == "pending"


def test_an_invalid_as_of_date_is_refused_with_a_reason(app, client_as, demo):
    response = client_as("accountant").post("/agents/billing_run/run", data={"as_of": "31.13.2026"}, headers=HX)
    assert response.status_code == 422
    assert ("As-of date: &#39;31.13.2026&#39; is not a date (use DD.MM.YYYY or YYYY-MM-DD)."
            in response.get_data(as_text=True))
    with app.app_context():
        assert runs() == []


def test_without_javascript_the_run_answers_with_the_whole_page(app, client_as, demo):
    client = client_as("accountant")
    preview = press_run(client, headers={})
    assert preview.status_code == 200 and "<html" in preview.get_data(as_text=True)
    assert 'id="run-preview"' in preview.get_data(as_text=True)
    response = press_confirm(client, preview.get_data(as_text=True), headers={})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and "Run #1 started — view progress" in html


def test_a_disabled_agent_says_why_it_cannot_run(app, client_as, demo):
    with app.app_context():
        agent().enabled = False
        db.session.commit()
    client = client_as("accountant")
    html = client.get("/agents/billing_run").get_data(as_text=True)
    assert "is disabled, so it cannot run" in html and ">Run</button>" not in html
    response = client.post("/agents/billing_run/run", data={}, headers=HX)
    assert response.status_code == 409 and "the Billing Run Agent is disabled" in response.get_data(as_text=True)
    with app.app_context():
        assert runs() == []


def test_without_a_legal_entity_the_overview_says_to_add_one(app, client_as, users):
    client = client_as("admin")
    html = client.get("/agents/billing_run").get_data(as_text=True)
    assert "No legal entity yet" in html and ">Run</button>" not in html
    response = client.post("/agents/billing_run/run", data={}, headers=HX)
    assert response.status_code == 409 and "No legal entity yet" in response.get_data(as_text=True)
    assert "No legal entity yet" in client.get("/agents/billing_run/runs").get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(app, client_as, demo):
    assert client_as("admin").post("/agents/billing_run/run", data={}, csrf=False).status_code == 400
    with app.app_context():
        assert runs() == []


# ------------------------------------------------------------------ configuration
def test_the_configuration_form_is_generated_from_the_declared_settings(client_as, demo):
    html = client_as("admin").get("/agents/billing_run/configuration").get_data(as_text=True)
    assert 'type="checkbox" role="switch" id="setting-auto_post" name="auto_post" checked' in html
    assert 'name="chunk_size" value="2000"' in html and 'min="10"' in html and 'max="10000"' in html
    assert "Contracts per chunk" in html and "larger is faster, smaller isolates more" in html
    assert 'name="payment_terms_days" value="14"' in html and 'name="as_of_offset_days" value="0"' in html
    assert ">Save configuration</button>" in html and "<fieldset >" in html


@pytest.mark.parametrize("role", ("viewer", "accountant"))
def test_non_admins_see_the_configuration_read_only_and_cannot_save(app, client_as, demo, role):
    client = client_as(role)
    html = client.get("/agents/billing_run/configuration").get_data(as_text=True)
    assert "<fieldset disabled>" in html and "Save configuration" not in html
    assert "Only admins can change" in html and "/agents/billing_run/enabled" not in html
    form = {"auto_post": "on", "payment_terms_days": "14", "chunk_size": "200", "as_of_offset_days": "0"}
    assert client.post("/agents/billing_run/configuration", data=form, headers=HX).status_code == 403
    assert client.post("/agents/billing_run/enabled", data={"enabled": "0"}).status_code == 403
    with app.app_context():
        assert agent().configuration["chunk_size"] == 2000 and agent().enabled


def test_invalid_values_are_shown_inline_with_422_and_nothing_is_saved(app, client_as, demo):
    form = {"auto_post": "on", "payment_terms_days": "abc", "chunk_size": "5", "as_of_offset_days": "0"}
    response = client_as("admin").post("/agents/billing_run/configuration", data=form, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in html
    assert '<small class="error" id="error-chunk_size" role="alert">5 is below the minimum 10</small>' in html
    assert "&#39;abc&#39; is not a whole number" in html
    assert 'name="chunk_size" value="5"' in html  # what was typed stays in the field
    assert "Nothing was saved" in html
    with app.app_context():
        assert agent().configuration["chunk_size"] == 2000
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.configured")) is None


def test_saving_shows_old_and_new_values_and_is_audited(app, client_as, demo):
    form = {"payment_terms_days": "14", "chunk_size": "200", "as_of_offset_days": "0"}  # auto_post unchecked
    response = client_as("admin").post("/agents/billing_run/configuration", data=form, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Saved: Post invoices at once on → off, Contracts per chunk 2000 → 200" in html
    with app.app_context():
        config = agent().configuration
        assert config["chunk_size"] == 200 and config["auto_post"] is False
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.configured"))
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        assert entry.actor_user_id == admin.id and entry.actor_label == "admin@example.com"
        assert entry.details["changes"]["chunk_size"] == {"old": 2000, "new": 200}


def test_saving_without_javascript_redirects_with_the_message(app, client_as, demo):
    client = client_as("admin")
    form = {"auto_post": "on", "payment_terms_days": "30", "chunk_size": "2000", "as_of_offset_days": "0"}
    response = client.post("/agents/billing_run/configuration", data=form)
    assert response.status_code == 303 and response.headers["Location"] == "/agents/billing_run/configuration"
    html = client.get("/agents/billing_run/configuration").get_data(as_text=True)
    assert "Saved: Default payment terms (days) 14 → 30" in html and 'name="payment_terms_days" value="30"' in html


def test_admins_disable_and_enable_the_agent_audited(app, client_as, demo):
    client = client_as("admin")
    response = client.post("/agents/billing_run/enabled", data={"enabled": "0"})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Billing Run Agent disabled." in html and ">Enable the Billing Run Agent</button>" in html
    with app.app_context():
        assert agent().enabled is False
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.disabled"))
        assert entry.actor_label == "admin@example.com"
    client.post("/agents/billing_run/enabled", data={"enabled": "1"})
    with app.app_context():
        assert agent().enabled is True
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.enabled")) is not None


# ------------------------------------------------------------------ the agent's runs
def test_the_runs_tab_lists_the_current_entitys_runs_with_a_link_to_runs_billing(app, client_as, demo):
    with app.app_context():
        other = make_entity("FR01", locale="fr_FR", timezone="Europe/Paris")
        make_contract(other, "F-1", start=date(2026, 1, 1))
        db.session.commit()
    billing_run_inline(app, "FR01")
    run_id = billing_run_inline(app)
    html = client_as("viewer").get("/agents/billing_run/runs").get_data(as_text=True)
    assert f'href="/runs/{run_id}">#1</a>' in html and "117,06\xa0€" in html
    assert html.count('<tr id="run-row-') == 1  # FR01's run is not listed
    assert 'href="/runs"' in html and "Runs > Billing" in html


def test_the_runs_tab_empty_state_points_to_the_overview(client_as, demo):
    html = client_as("viewer").get("/agents/billing_run/runs").get_data(as_text=True)
    assert "No billing runs for DE01 yet — start one from the Overview tab." in html


def test_an_agent_setting_a_legal_entity_overrides_says_so_wherever_it_is_shown(app, client_as, demo):
    """Payment terms 14 → 30 on the agent changes nothing for DE01, which sets 14 itself: every page says so."""
    from app.models import Contract, LegalEntity

    admin = client_as("admin")
    form = {"auto_post": "on", "payment_terms_days": "30", "chunk_size": "2000", "as_of_offset_days": "0"}
    assert admin.post("/agents/billing_run/configuration", data=form).status_code == 303
    page = admin.get("/agents/billing_run/configuration").get_data(as_text=True)
    assert 'id="overrides-payment_terms_days"' in page and "Does not apply in\n        DE01 (14)" in page
    assert 'id="overrides-chunk_size"' not in page  # no legal entity sets that
    with app.app_context():
        contract_id = db.session.scalar(select(Contract.id).order_by(Contract.id))
        entity_id = db.session.scalar(select(LegalEntity.id))
    detail = admin.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert ("14 days, from the legal entity DE01; the Billing Run Agent&#39;s default 30 days does not apply"
            in detail)
    assert "the Billing Run Agent&#39;s default (30 days) applies" in admin.get(
        f"/settings/entities/{entity_id}/edit").get_data(as_text=True)


def test_an_emptied_setting_asks_for_a_value_in_words(client_as, demo):
    response = client_as("admin").post("/agents/billing_run/configuration", data={
        "auto_post": "on", "payment_terms_days": "", "chunk_size": "2000", "as_of_offset_days": "0"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "enter a whole number, e.g. 14" in page and "&#39;&#39; is not a whole number" not in page
