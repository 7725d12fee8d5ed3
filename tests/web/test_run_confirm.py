"""Confirm before money moves (issue 13 item 2): the Run button shows the run's preview; only its Confirm starts
the run; billing ahead of time needs an extra tick and is capped; a forged or stale Confirm starts nothing."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.demo import seed_demo
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, BillingRun, Customer, LegalEntity
from tests.confirming import confirm_fields
from tests.factories import make_contract

HX = {"HX-Request": "true"}
URL = "/agents/billing_run/run"


@pytest.fixture
def demo(app, users):
    """DE01 (Europe/Berlin) with Bolt and Starship Technologies: 2 × 58.53 EUR, both with an e-mail address."""
    with app.app_context():
        seed_demo(date.today())
        db.session.commit()


def runs():
    return list(db.session.scalars(select(BillingRun).order_by(BillingRun.id)))


def today(app) -> date:
    with app.app_context():
        return db.session.scalar(select(LegalEntity).where(LegalEntity.code == "DE01")).today()


def preview(client, **form):
    response = client.post(URL, data=form, headers=HX)
    return response, response.get_data(as_text=True)


def confirm(client, html, **extra):
    response = client.post(URL, data={**confirm_fields(html, "run-confirm"), **extra}, headers=HX)
    return response, response.get_data(as_text=True)


def test_the_preview_shows_what_the_run_would_bill_and_whom_it_would_mail_and_debit(app, client_as, demo):
    response, html = preview(client_as("accountant"))
    assert response.status_code == 200
    assert f"Preview: run as of {today(app).isoformat()} for DE01" in html
    assert '<dd id="preview-contracts">2 of 2 active</dd>' in html
    assert '<dd id="preview-invoices">2</dd>' in html
    assert '<span class="nowrap" data-currency="EUR">117,06\xa0€</span>' in html  # the money filter, de_DE
    assert '<dd id="preview-emailed">2</dd>' in html and '<dd id="preview-debited">0</dd>' in html
    assert "C-1001" in html and "C-1002" in html and "Starship Technologies" in html and "58,53\xa0€" in html
    assert ">Confirm</button>" in html and 'id="run-cancel"' in html and "I want to bill ahead of time" not in html
    with app.app_context():
        assert runs() == []  # nothing started, nothing written


def test_sepa_customers_are_counted_as_debited_and_no_delivery_agent_means_nobody_e_mailed(app, client_as, demo):
    with app.app_context():
        bolt = db.session.scalar(select(Customer).where(Customer.name == "Bolt"))
        bolt.payment_method, bolt.iban = "sepa_debit", "DE89370400440532013000"
        bolt.mandate_reference, bolt.mandate_date = "M-1", date(2026, 1, 1)
        db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "invoice_delivery")).enabled = False
        db.session.commit()
    _, html = preview(client_as("accountant"))
    assert '<dd id="preview-emailed">0</dd>' in html and '<dd id="preview-debited">1</dd>' in html
    assert "The Invoice Delivery Agent is off: nobody is e-mailed." in html


def test_drafts_mail_and_debit_nobody(app, client_as, demo):
    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        agent.configuration = {**(agent.configuration or {}), "auto_post": False}
        db.session.commit()
    _, html = preview(client_as("accountant"))
    assert '<dd id="preview-emailed">0</dd>' in html and '<dd id="preview-debited">0</dd>' in html
    assert "created as drafts" in html


def test_confirm_starts_the_run_and_its_audit_records_who_confirmed_what(app, client_as, demo):
    client = client_as("accountant")
    _, html = preview(client)
    response, answer = confirm(client, html)
    assert response.status_code == 200 and "Run #1 started — view progress" in answer
    with app.app_context():
        (run,) = runs()
        assert not run.dry_run and run.as_of == today(app)
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "billing_run.confirmed"))
        assert entry.billing_run_id == run.id and entry.actor_label == "accountant@example.com"
        assert entry.details["invoices"] == 2 and entry.details["totals"] == {"EUR": "117.06"}
        assert entry.details["customers_emailed"] == 2 and entry.details["customers_debited"] == 0
        assert entry.details["as_of"] == today(app).isoformat() and entry.details["ahead_of_time"] is False
        run_id = run.id
    audit = client.get(f"/runs/{run_id}/audit").get_data(as_text=True)
    assert ("Confirmed by accountant@example.com after its preview: 2 contracts, 2 invoices, 117,06\xa0€; "
            "2 customers to e-mail, 0 to debit") in audit


def test_a_run_with_nothing_to_bill_says_so_and_has_no_confirm(app, client_as, demo):
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == "DE01"))
        run = start_billing_run(entity, None, "manual", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
    client = client_as("accountant")
    response, html = preview(client)
    assert response.status_code == 200
    assert "Nothing to bill as of" in html and "each due period of the 2 active contracts has its invoice" in html
    assert 'id="run-confirm"' not in html and ">Confirm</button>" not in html


def test_billing_ahead_of_time_warns_and_needs_the_extra_tick(app, client_as, demo):
    client = client_as("accountant")
    ahead = today(app) + timedelta(days=5)
    _, html = preview(client, as_of=ahead.isoformat())
    assert "This run bills ahead of time" in html and "is 5 days after today" in html and "Europe/Berlin" in html
    assert 'name="ahead_of_time" required' in html and "I want to bill ahead of time" in html
    response, answer = confirm(client, html)  # without the tick
    assert response.status_code == 422 and "tick “I want to bill ahead of time”" in answer
    with app.app_context():
        assert runs() == []
    response, answer = confirm(client, html, ahead_of_time="on")
    assert response.status_code == 200 and "Run #1 started" in answer
    with app.app_context():
        (run,) = runs()
        assert run.as_of == ahead
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "billing_run.confirmed"))
        assert entry.details["ahead_of_time"] is True and entry.details["days_ahead"] == 5


def test_beyond_the_cap_the_preview_refuses_and_a_confirm_starts_nothing(app, client_as, demo, monkeypatch):
    client = client_as("accountant")
    far = today(app) + timedelta(days=32)
    response, html = preview(client, as_of=far.isoformat())
    assert response.status_code == 200
    assert f"Refused: as-of {far.isoformat()} is 32 days after today ({today(app).isoformat()} in Europe/Berlin); " \
           "a billing run bills at most 31 days ahead (RUN_AS_OF_MAX_DAYS_AHEAD)" in html
    assert 'id="run-confirm"' not in html
    # The cap is configurable: at 3 days, 5 days ahead is refused too.
    monkeypatch.setitem(app.config, "RUN_AS_OF_MAX_DAYS_AHEAD", 3)
    _, html = preview(client, as_of=(today(app) + timedelta(days=5)).isoformat())
    assert "at most 3 days ahead" in html and 'id="run-confirm"' not in html
    forged = client.post(URL, data={"as_of": far.isoformat(), "confirm": "1", "confirm_token": "x",
                                    "ahead_of_time": "on"}, headers=HX)
    assert forged.status_code == 409
    with app.app_context():
        assert runs() == []


def test_a_forged_or_foreign_confirm_is_refused_with_the_preview_again(app, client_as, demo):
    accountant = client_as("accountant")
    _, html = preview(accountant)
    fields = confirm_fields(html, "run-confirm")
    forged = accountant.post(URL, data={**fields, "confirm_token": fields["confirm_token"][:-2] + "xx"}, headers=HX)
    text = forged.get_data(as_text=True)
    assert forged.status_code == 409 and "is not one this page gave out" in text and 'id="run-confirm"' in text
    missing = accountant.post(URL, data={"as_of": fields["as_of"], "confirm": "1"}, headers=HX)
    assert missing.status_code == 409 and "nothing was confirmed yet" in missing.get_data(as_text=True)
    admin = client_as("admin")  # another person's Confirm
    foreign = admin.post(URL, data=fields, headers=HX)
    assert foreign.status_code == 409 and "given to someone else" in foreign.get_data(as_text=True)
    with app.app_context():
        assert runs() == []


def test_a_stale_confirm_shows_the_new_preview_which_can_be_confirmed(app, client_as, demo):
    client = client_as("accountant")
    _, html = preview(client)
    with app.app_context():  # meanwhile a contract was added: the run would bill 3 invoices, not 2
        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == "DE01"))
        make_contract(entity, "C-2000", start=today(app).replace(day=1))
        db.session.commit()
    response, answer = confirm(client, html)
    assert response.status_code == 409 and "changed since the preview was made" in answer
    assert '<dd id="preview-invoices">3</dd>' in answer
    with app.app_context():
        assert runs() == []
    response, answer = confirm(client, answer)
    assert response.status_code == 200 and "Run #1 started" in answer


def test_an_old_preview_must_be_looked_at_again(app, client_as, demo, monkeypatch):
    client = client_as("accountant")
    _, html = preview(client)
    monkeypatch.setitem(app.config, "CONFIRM_MAX_AGE_SECONDS", -1)  # every token is too old
    response, answer = confirm(client, html)
    assert response.status_code == 409 and "the preview is older than" in answer
    with app.app_context():
        assert runs() == []


def test_a_dry_run_still_starts_at_once(app, client_as, demo):
    response = client_as("accountant").post(URL, data={"dry_run": "on"}, headers=HX)
    assert response.status_code == 200 and "Dry run #1 started" in response.get_data(as_text=True)
