"""Runs > Billing: the list (filter, pages, live rows), a run's detail and tabs, Retry failed and Cancel."""
from datetime import date
from decimal import Decimal

import pytest
from flask import url_for
from sqlalchemy import select, update

from app.audit import Actor, record
from app.billing.runs import execute_run, start_billing_run
from app.demo import seed_demo
from app.extensions import db
from app.models import AuditEntry, BillingRun, Contract, ContractLine, LegalEntity
from app.models.types import utcnow
from tests.confirming import confirm_fields
from tests.factories import make_contract, make_entity
from tests.paging import count_text, page_link

ROLES = ("viewer", "accountant", "admin")
HX = {"HX-Request": "true"}
EUR_117_06 = "117,06\xa0€"  # Babel's de_DE format, with a no-break space
POLL = 'hx-trigger="every 1s"'


@pytest.fixture
def demo(app, users):
    """The walkthrough's DE01 (de_DE, Europe/Berlin) with Bolt and Starship Technologies."""
    with app.app_context():
        seed_demo(date.today())
        db.session.commit()


def entity(code="DE01"):
    return db.session.scalar(select(LegalEntity).where(LegalEntity.code == code))


def start(app, code="DE01", *, run=True, dry_run=False, actor=None, as_of=None):
    """Start a run without a worker; with `run`, execute it inline. Returns the run id."""
    with app.app_context():
        result = start_billing_run(entity(code), as_of or date.today(), "manual", actor or Actor.system("test"),
                                   dry_run, enqueue=False)
        assert result.started, result.message
        if run:
            execute_run(result.run.id, inline=True)
        return result.run.id


def set_run(app, run_id, **values):
    with app.app_context():
        db.session.execute(update(BillingRun).where(BillingRun.id == run_id).values(**values))
        db.session.commit()


def get_run(app, run_id):
    with app.app_context():
        run = db.session.get(BillingRun, run_id)
        db.session.expunge(run)
        return run


# ------------------------------------------------------------------ the list
@pytest.mark.parametrize("role", ROLES)
def test_the_empty_list_says_how_to_start_a_run(client_as, demo, role):
    response = client_as(role).get("/runs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "No billing runs yet — start one from Agents &gt; Definitions &gt; Billing Run Agent." in html
    assert 'href="/agents/billing_run"' in html


def test_without_a_legal_entity_the_list_says_to_add_one(client_as, users):
    html = client_as("viewer").get("/runs").get_data(as_text=True)
    assert "No legal entity yet" in html


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_runs_of_the_current_entity(app, client_as, demo, role):
    user = Actor("user", "accountant@example.com")
    run_id = start(app, actor=user)
    html = client_as(role).get("/runs").get_data(as_text=True)
    assert f'<a href="/runs/{run_id}">#1</a>' in html
    assert f"<td>{date.today():%Y-%m}</td>" in html  # the period label
    assert '<td class="num">2</td>' in html and EUR_117_06 in html
    assert 'badge-completed">completed</span>' in html and "manual · accountant@example.com" in html
    assert " s</td>" in html  # a duration


def test_the_list_is_newest_first_and_only_of_the_current_entity(app, client_as, demo):
    with app.app_context():
        other = make_entity("FR01")
        make_contract(other, "F-1", start=date(2026, 1, 1))
        db.session.commit()
    start(app, "FR01")
    first, second = start(app), start(app)
    html = client_as("viewer").get("/runs").get_data(as_text=True)
    assert html.index(f'href="/runs/{second}">#2') < html.index(f'href="/runs/{first}">#1')
    assert html.count('<tr id="run-row-') == 2


def test_a_dry_run_is_marked(app, client_as, demo):
    run_id = start(app, dry_run=True)
    client = client_as("viewer")
    assert "dry run</span>" in client.get("/runs").get_data(as_text=True)
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Dry run #1" in html and "A preview: nothing was invoiced." in html


def test_the_status_filter_works_with_and_without_htmx(app, client_as, demo):
    done = start(app)
    failed = start(app, run=False)
    set_run(app, failed, status="failed", error="the job queue (Redis) is unreachable", finished_at=utcnow())
    client = client_as("viewer")
    page = client.get("/runs?status=failed")
    html = page.get_data(as_text=True)
    assert f'href="/runs/{failed}"' in html and f'href="/runs/{done}"' not in html
    assert '<option value="failed" selected>' in html and "<html" in html
    assert 'hx-get="/runs"' in html and 'hx-target="#runs-table" hx-trigger="change" hx-push-url="true"' in html
    assert '<noscript><button type="submit">Filter</button></noscript>' in html  # works without JavaScript
    partial = client.get("/runs?status=completed", headers=HX)
    body = partial.get_data(as_text=True)
    assert "<html" not in body and "<select" not in body
    assert f'href="/runs/{done}"' in body and f'href="/runs/{failed}"' not in body
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in partial.headers["Vary"]
    assert "No cancelled runs for DE01." in client.get("/runs?status=cancelled").get_data(as_text=True)
    # An unknown status is no filter at all.
    assert client.get("/runs?status=bogus").get_data(as_text=True).count('<tr id="run-row-') == 2


def test_the_list_is_paged_25_at_a_time(app, client_as, demo):
    with app.app_context():
        de = entity()
        db.session.add_all([
            BillingRun(legal_entity_id=de.id, number=n, as_of=date(2026, 1, 1), period_label="2026-01",
                       status="completed", trigger="cli", actor_type="system", actor_label="cli")
            for n in range(1, 31)])
        db.session.commit()
    client = client_as("viewer")
    first = client.get("/runs").get_data(as_text=True)
    assert first.count('<tr id="run-row-') == 25 and count_text(first) == "30 in all"
    assert ">#30</a>" in first and ">#5</a>" not in first
    second = client.get(page_link(first, "next")).get_data(as_text=True)
    assert second.count('<tr id="run-row-') == 5 and ">#5</a>" in second and ">#1</a>" in second


# ------------------------------------------------------------------ live rows
def test_a_pending_or_running_row_polls_itself_and_a_finished_one_stops(app, client_as, demo):
    run_id = start(app, run=False)
    client = client_as("viewer")
    row = client.get(f"/runs/{run_id}/row", headers=HX)
    html = row.get_data(as_text=True)
    assert row.status_code == 200 and "HX-Request" in row.headers["Vary"]
    assert html.lstrip().startswith(f'<tr id="run-row-{run_id}"')
    assert f'hx-get="/runs/{run_id}/row" {POLL} hx-swap="outerHTML"' in html
    assert POLL in client.get("/runs").get_data(as_text=True)

    set_run(app, run_id, status="running", started_at=utcnow(), contracts_total=2, contracts_processed=1)
    html = client.get(f"/runs/{run_id}/row", headers=HX).get_data(as_text=True)
    assert POLL in html and '<progress value="1" max="2"' in html and "1 / 2 contracts" in html

    with app.app_context():
        from app.billing.chunks import process_chunk

        set_run(app, run_id, contracts_processed=0)
        contract_ids = list(db.session.scalars(select(Contract.id).order_by(Contract.id)))
        process_chunk(run_id, contract_ids, {"auto_post": True, "payment_terms_days": 14})
    html = client.get(f"/runs/{run_id}/row", headers=HX).get_data(as_text=True)
    assert "completed" in html and "hx-trigger" not in html and "hx-get" not in html and EUR_117_06 in html


def test_the_row_url_without_htmx_goes_to_the_run(app, client_as, demo):
    run_id = start(app)
    response = client_as("viewer").get(f"/runs/{run_id}/row")
    assert response.status_code == 302 and response.headers["Location"] == f"/runs/{run_id}"


# ------------------------------------------------------------------ the detail
@pytest.mark.parametrize("role", ROLES)
def test_a_completed_run_shows_its_summary(app, client_as, demo, role):
    run_id = start(app)
    response = client_as(role).get(f"/runs/{run_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Billing run #1" in html
    assert EUR_117_06 in html and 'badge-completed">completed</span>' in html
    assert "2 / 2" in html and "Invoices generated" in html and "0 failed" in html
    assert f"<td>{date.today().isoformat()}</td>" in html  # as of
    assert POLL not in html  # a finished run does not poll


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("tab", ("", "/contracts", "/invoices", "/audit"))
def test_every_tab_is_a_full_page_and_an_htmx_partial(app, client_as, demo, role, tab):
    run_id = start(app)
    client = client_as(role)
    full = client.get(f"/runs/{run_id}{tab}")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert '<div id="run-body">' in full.get_data(as_text=True)
    partial = client.get(f"/runs/{run_id}{tab}", headers=HX)
    body = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in body and '<div id="run-body">' not in body
    assert 'id="run-summary"' in body and 'id="tab-panel"' in body  # the body: summary, tabs, panel
    assert "HX-Request" in full.headers["Vary"] and "HX-Request" in partial.headers["Vary"]
    active = tab.strip("/") or "contracts"
    assert f'class="active" hx-get="/runs/{run_id}/{active}" hx-target="#run-body"' in body


def test_a_pending_or_running_summary_polls_and_a_finished_one_does_not(app, client_as, demo):
    run_id = start(app, run=False)
    client = client_as("viewer")
    html = client.get(f"/runs/{run_id}/audit", headers=HX).get_data(as_text=True)
    assert f'hx-get="/runs/{run_id}/audit" {POLL} hx-target="#run-body"' in html  # keeps the tab it is on
    set_run(app, run_id, status="running", started_at=utcnow(), contracts_total=2, contracts_processed=1)
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert POLL in html and '<progress value="1" max="2"' in html
    set_run(app, run_id, status="failed", error="the run stopped: database gone", finished_at=utcnow())
    html = client.get(f"/runs/{run_id}", headers=HX).get_data(as_text=True)
    assert POLL not in html and "the run stopped: database gone" in html


def test_the_contracts_tab_shows_each_contracts_outcome(app, client_as, demo):
    run_id = start(app)
    html = client_as("viewer").get(f"/runs/{run_id}/contracts").get_data(as_text=True)
    assert "C-1001" in html and "Bolt" in html and "C-1002" in html and "Starship Technologies" in html
    assert html.count('badge-invoiced">invoiced</span>') == 2 and "58,53\xa0€" in html
    with app.test_request_context():
        contract_id = db.session.scalar(select(Contract.id).where(Contract.reference == "C-1001"))
        contract_url = url_for("records.contract_detail", contract_id=contract_id) \
            if "records.contract_detail" in app.view_functions else None
    if contract_url:  # a link once Records > Contracts exists, else plain text
        assert f'<a href="{contract_url}">C-1001</a>' in html
    else:
        assert "<td>C-1001</td>" in html


def test_failed_only_filter_shows_the_failed_contract_and_its_reason(app, client_as, demo):
    with app.app_context():
        make_contract(entity(), "C-BAD", start=date(2026, 1, 1), customer="Broken Ltd",
                      lines=[("Support", "1", "10.00", None)])
        db.session.commit()
    run_id = start(app)
    client = client_as("viewer")
    html = client.get(f"/runs/{run_id}/contracts?status=failed").get_data(as_text=True)
    assert "C-BAD" in html and "Broken Ltd" in html and "VAT rate" in html
    assert "C-1001" not in html and 'badge-failed">failed</span>' in html
    assert "Failed only (1)" in html and "1 contract(s) failed" in html


def test_the_contracts_tab_is_paged(app, client_as, demo):
    with app.app_context():
        for n in range(30):
            make_contract(entity(), f"X-{n:03d}", start=date(2026, 1, 1), customer=f"Customer {n}")
        db.session.commit()
    run_id = start(app)
    client = client_as("viewer")
    first = client.get(f"/runs/{run_id}/contracts").get_data(as_text=True)
    assert count_text(first) == "32 in all" and page_link(first, "next").startswith(f"/runs/{run_id}/contracts?after=")
    second = client.get(page_link(first, "next")).get_data(as_text=True)
    assert not page_link(second, "next") and "X-029" in second and "X-000" not in second


def test_the_invoices_tab_lists_the_invoices_of_the_run(app, client_as, demo):
    run_id = start(app)
    html = client_as("viewer").get(f"/runs/{run_id}/invoices").get_data(as_text=True)
    year = date.today().year
    assert f"DE01-{year}-000001" in html and f"DE01-{year}-000002" in html
    assert "Bolt" in html and "Starship Technologies" in html and html.count("58,53\xa0€") == 2
    assert html.count('badge-issued">issued</span>') == 2


def test_the_audit_tab_tells_the_runs_lifecycle_in_words(app, client_as, demo):
    run_id = start(app, actor=Actor("user", "admin@arbill.example"))
    with app.app_context():
        record("workflow.step_fired", "event", 7, Actor.system("Orchestration"), billing_run_id=run_id,
               event_type="invoice.issued", agent="invoice_delivery", job_id="invoice_delivery-event-7")
        db.session.commit()
    html = client_as("viewer").get(f"/runs/{run_id}/audit").get_data(as_text=True)
    queued = html.index(f"Queued by admin@arbill.example (manual trigger), as of {date.today().isoformat()}")
    started = html.index("Started by billing worker")
    completed = html.index(f"Completed: 2 invoices, {EUR_117_06}")
    fired = html.index("Invoice Delivery Agent asked to act, because an invoice is issued")
    assert queued < started < completed < fired  # oldest first
    assert "invoice_delivery-event-7" not in html and "· Orchestration" in html  # words, not job ids
    assert 'data-action="billing_run.queued"' in html and "<time datetime=" in html


def test_the_audit_tab_phrases_fan_out_failure_and_retries(app, client_as, demo):
    run_id = start(app, run=False)
    with app.app_context():
        record("billing_run.fanned_out", "billing_run", run_id, Actor.system("billing worker"),
               billing_run_id=run_id, chunks=4, chunk_size=500)
        db.session.commit()
    set_run(app, run_id, status="running", started_at=utcnow())
    with app.app_context():
        from app.billing.run_end import fail_run

        fail_run(run_id, "no progress for 12 minute(s): the worker running it probably stopped")
    html = client_as("viewer").get(f"/runs/{run_id}/audit").get_data(as_text=True)
    assert "Split into 4 chunks of up to 500 contracts for the workers" in html
    assert "Failed: no progress for 12 minute(s): the worker running it probably stopped" in html


def test_another_entitys_run_is_viewable_and_a_missing_one_is_404(app, client_as, demo):
    with app.app_context():
        other = make_entity("FR01", locale="fr_FR", timezone="Europe/Paris")
        make_contract(other, "F-1", start=date(2026, 1, 1))
        db.session.commit()
    run_id = start(app, "FR01")
    client = client_as("viewer")
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "FR01 GmbH" in html and "This run belongs to FR01" in html
    assert client.get("/runs/999999").status_code == 404
    assert client.get("/runs/999999/audit", headers=HX).status_code == 404
    assert client.get("/runs/999999/row", headers=HX).status_code == 404


def test_names_and_references_are_escaped_on_the_contracts_tab(app, client_as, demo):
    with app.app_context():
        make_contract(entity(), "<script>ref()</script>", start=date(2026, 1, 1),
                      customer="<script>alert(1)</script>")
        db.session.commit()
    run_id = start(app)
    client = client_as("viewer")
    for tab in ("contracts", "invoices"):
        html = client.get(f"/runs/{run_id}/{tab}").get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = client.get(f"/runs/{run_id}/contracts").get_data(as_text=True)
    assert "<script>ref()" not in html and "&lt;script&gt;ref()&lt;/script&gt;" in html


# ------------------------------------------------------------------ Retry failed and Cancel
def _run_with_a_failure(app):
    with app.app_context():
        make_contract(entity(), "C-BAD", start=date(2026, 1, 1), lines=[("Support", "1", "10.00", None)])
        db.session.commit()
    return start(app)


def test_retry_failed_starts_a_run_of_only_the_failed_contracts(app, client_as, demo):
    run_id = _run_with_a_failure(app)
    client = client_as("accountant")
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f'href="/runs/{run_id}/retry"' in html and "Retry 1 failed contract(s)" in html
    step = client.get(f"/runs/{run_id}/retry").get_data(as_text=True)  # the retry's preview: C-BAD fails again
    assert "Preview: retry of run #1's 1 failed contract" in step and "C-BAD" in step
    with app.app_context():
        assert len(list(db.session.scalars(select(BillingRun)))) == 1  # the preview started nothing
    response = client.post(f"/runs/{run_id}/retry", data=confirm_fields(step, "run-confirm"))
    assert response.status_code == 303
    with app.app_context():
        new = db.session.scalar(select(BillingRun).where(BillingRun.id != run_id))
        bad = db.session.scalar(select(Contract.id).where(Contract.reference == "C-BAD"))
        assert new.contract_ids == [bad] and new.status == "pending" and new.actor_label == "accountant@example.com"
    assert response.headers["Location"] == f"/runs/{new.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Run #2 queued for DE01" in page and POLL in page


def test_retry_answers_htmx_with_a_redirect_header(app, client_as, demo):
    run_id = _run_with_a_failure(app)
    client = client_as("admin")
    step = client.get(f"/runs/{run_id}/retry").get_data(as_text=True)
    response = client.post(f"/runs/{run_id}/retry", data=confirm_fields(step, "run-confirm"), headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/runs/")


def test_retry_without_failures_is_refused_with_a_message(app, client_as, demo):
    run_id = start(app)
    client = client_as("accountant")
    assert "/retry" not in client.get(f"/runs/{run_id}").get_data(as_text=True)
    response = client.post(f"/runs/{run_id}/retry", follow_redirects=True)
    assert "Nothing retried: run #1 has no failed contracts to retry." in response.get_data(as_text=True)
    with app.app_context():
        assert len(list(db.session.scalars(select(BillingRun)))) == 1


def test_retry_starts_only_with_its_confirm_which_the_new_runs_audit_records(app, client_as, demo):
    run_id = _run_with_a_failure(app)
    client = client_as("accountant")
    bare = client.post(f"/runs/{run_id}/retry")
    assert bare.status_code == 409 and "Nothing retried: nothing was confirmed yet" in bare.get_data(as_text=True)
    with app.app_context():  # the failed contract is fixed meanwhile: the retry would now bill it
        bad = db.session.scalar(select(Contract).where(Contract.reference == "C-BAD"))
        db.session.execute(ContractLine.__table__.update().where(ContractLine.contract_id == bad.id)
                           .values(vat_rate=Decimal("19")))
        db.session.commit()
    stale = client.post(f"/runs/{run_id}/retry", data=confirm_fields(bare.get_data(as_text=True), "run-confirm"))
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "changed since the preview was made" in html
    assert '<dd id="preview-invoices">12</dd>' in html and "142,80\xa0€" in html  # January to December, 11.90 each
    assert client.post(f"/runs/{run_id}/retry", data=confirm_fields(html, "run-confirm")).status_code == 303
    with app.app_context():
        new = db.session.scalar(select(BillingRun).where(BillingRun.id != run_id))
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "billing_run.confirmed"))
        assert entry.billing_run_id == new.id and entry.details["retry_of"] == 1 and entry.details["invoices"] == 12


def test_viewers_see_no_buttons_and_their_posts_are_forbidden(app, client_as, demo):
    failed_run = _run_with_a_failure(app)
    pending = start(app, run=False)
    client = client_as("viewer")
    for run_id in (failed_run, pending):
        html = client.get(f"/runs/{run_id}").get_data(as_text=True)
        assert "/retry" not in html and "/cancel" not in html
    assert client.post(f"/runs/{failed_run}/retry").status_code == 403
    assert client.post(f"/runs/{pending}/cancel").status_code == 403
    assert get_run(app, pending).status == "pending"


def test_cancel_works_for_a_pending_run_and_is_audited(app, client_as, demo):
    run_id = start(app, run=False)
    client = client_as("accountant")
    assert f'action="/runs/{run_id}/cancel"' in client.get(f"/runs/{run_id}").get_data(as_text=True)
    response = client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 303 and response.headers["Location"] == f"/runs/{run_id}"
    assert get_run(app, run_id).status == "cancelled"
    html = client.get(f"/runs/{run_id}/audit").get_data(as_text=True)
    assert "Run #1 cancelled." in html and "Cancelled by accountant@example.com" in html and POLL not in html
    with app.app_context():
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "billing_run.cancelled")) is not None


def test_cancel_is_refused_once_the_run_is_not_pending(app, client_as, demo):
    run_id = start(app)
    client = client_as("admin")
    assert "/cancel" not in client.get(f"/runs/{run_id}").get_data(as_text=True)
    html = client.post(f"/runs/{run_id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Run #1 is completed: only a pending run can be cancelled." in html
    assert get_run(app, run_id).status == "completed"


def test_a_post_without_the_csrf_token_is_refused(app, client_as, demo):
    run_id = start(app, run=False)
    assert client_as("admin").post(f"/runs/{run_id}/cancel", csrf=False).status_code == 400
    assert get_run(app, run_id).status == "pending"
