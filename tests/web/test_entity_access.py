"""Access per legal entity, route by route: every route of the URL map is called by people who hold a role in one
legal entity only (DE01), with the ids of another legal entity's records (DE02). A record of the other entity is not
found (404), an organisation-wide page is forbidden (403), a page of the user's own entity shows nothing of the other
one — and a route that is in none of these lists fails here, so a new route cannot ship without saying which it is."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import create_app
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import (AgentDefinition, BankEntry, DunningNotice, DunningNoticeItem, Invoice, LegalEntity, Payment,
                        ScheduledJob, SepaBatch, TaxCode)
from app.payments.cash import import_statement
from app.payments.ledger import record_payment
from app.payments.sepa import open_batch
from config import TestingConfig
from tests.factories import make_contract, make_entity

ACTOR = Actor.system("test")
SECRET_NAME = "Zweite Gesellschaft Kundin"  # a DE02 customer: must never show to DE01's people

# Which of the other entity's records each path parameter names.
OBJECT_PARAMS = {"invoice_id", "contract_id", "customer_id", "run_id", "batch_id", "schedule_id", "entry_id",
                 "code_id", "entity_id", "notice_id"}
# Organisation-wide: only an organisation admin (403 for everybody else).
ORG_ADMIN = {"settings.users", "settings.user_new", "settings.user_edit", "settings.user_roles", "settings.entity_new",
             "settings.user_invite", "settings.invitation_resend", "settings.invitation_withdraw",
             "mailbox.index", "mailbox.message", "mailbox.attachment",
             "orchestration.add", "orchestration.delete", "orchestration.disable", "orchestration.enable",
             "agents.configure", "agents.toggle", "settings.audit_trail_verify", "agents.new", "agents.create",
             "agents.triggers"}
# The user's own legal entity (the header's): whatever they answer, nothing of another entity is in it.
OWN_ENTITY = {"main.home", "main.switch_entity", "main.search", "agents.index", "agents.detail", "agents.configuration", "agents.runs",
              "agents.audit", "agents.run", "agents.run_now", "agents.test", "agents.versions", "collections.index", "orchestration.index", "records.bank",
              "records.bank_import", "records.bank_rematch", "records.contract_line_row", "records.contract_new",
              "records.contracts", "records.contracts_import", "records.customer_new", "records.customers",
              "records.invoices", "records.invoices_csv", "records.invoices_resend", "records.invoices_resend_confirm",
              "records.invoices_bulk_post", "records.invoices_bulk_post_confirm", "records.invoices_bulk_resend",
              "records.invoices_bulk_resend_confirm",
              "reports.aging", "reports.aging_csv", "reports.aging_rows", "runs.index", "dunning.preview",
              "schedules.index", "schedules.new", "schedules.preview", "settings.entities", "settings.tax_code_add",
              "settings.tax_codes", "settings.audit_trail", "settings.audit_log"}
# The user's own account (any signed-in user, about themselves only): nothing of a legal entity in it.
OWN_ACCOUNT = {"auth.security", "auth.security_enrol", "auth.security_recovery_codes", "auth.security_disable",
               "auth.security_password", "auth.security_sign_out_everywhere"}
PUBLIC = {"auth.login", "auth.second_factor", "auth.enrol", "auth.logout", "ops.healthz", "static",
          "auth.forgot_password", "auth.reset_requested", "auth.reset_password", "auth.accept_invitation"}


@pytest.fixture
def other_entity(app):
    """DE01 (the users') and DE02 with one of everything; returns the ids of DE02's records by parameter."""
    with app.app_context():
        make_entity("DE01")
        other = make_entity("DE02", iban="DE89370400440532013000")
        make_contract(other, "C-SECRET", start=date(2026, 11, 1), customer=SECRET_NAME)
        db.session.commit()
        run = start_billing_run(other, date(2026, 11, 26), "cli", ACTOR, enqueue=False)
        execute_run(run.run.id, inline=True)
        invoice = db.session.scalar(select(Invoice).where(Invoice.legal_entity_id == other.id))
        payment = record_payment(invoice.id, Decimal("1.00"), date(2026, 12, 1), "", ACTOR)
        batch = open_batch(other.id)
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        schedule = ScheduledJob(agent_id=agent.id, legal_entity_id=other.id, name="DE02 monthly", cron="0 6 1 * *",
                                preset="cron", preset_params={}, first_business_day=False, enabled=True)
        db.session.add(schedule)
        db.session.commit()
        notice = DunningNotice(legal_entity_id=other.id, customer_id=invoice.customer_id, level=1,
                               as_of=date(2026, 12, 1), currency="EUR", open_amount=invoice.amount_due, fee=Decimal(0),
                               interest=Decimal(0), total_amount=invoice.amount_due, status="sent",
                               email="secret@example.com")
        notice.items = [DunningNoticeItem(invoice_id=invoice.id, level=1, days_past_due=1,
                                          open_amount=invoice.amount_due, interest=Decimal(0))]
        db.session.add(notice)
        db.session.commit()
        import_statement(other, b"booking_date,amount,currency,counterparty_name,remittance,reference\n"
                                b"2026-12-01,5.00,EUR,Someone,hello,REF-1\n", "s.csv", ACTOR)
        db.session.commit()
        ids = {"invoice_id": invoice.id, "contract_id": invoice.contract_id, "customer_id": invoice.customer_id,
               "run_id": run.run.id, "batch_id": batch.id, "schedule_id": schedule.id,
               "entry_id": db.session.scalar(select(BankEntry.id)), "entity_id": other.id,
               "code_id": db.session.scalar(select(TaxCode.id).where(TaxCode.legal_entity_id == other.id)),
               "payment_id": payment.id, "number": invoice.number, "notice_id": notice.id}
        assert db.session.scalar(select(SepaBatch.legal_entity_id).where(SepaBatch.id == batch.id)) == other.id
        assert db.session.get(Payment, payment.id).invoice_id == invoice.id
        return ids


def _rules():
    application = create_app(TestingConfig())
    for rule in application.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith("rq_dashboard."):
            continue
        for method in sorted(m for m in rule.methods if m in ("GET", "POST")):
            yield pytest.param(rule.endpoint, rule.rule, method, id=f"{method} {rule.rule}")


def _path(rule: str, ids: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        return str(ids.get(name, "1" if name in ("item_id", "rule_id", "index", "user_id") else "x"))

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", value, rule)


@pytest.mark.parametrize("endpoint, rule, method", list(_rules()))
@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_people_of_one_legal_entity_reach_nothing_of_another(client_in, other_entity, role, endpoint, rule, method):
    params = set(re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule))
    client = client_in("DE01", role)
    path = _path(rule, {**other_entity, "key": "billing_run", "name": "x.eml"})
    response = client.get(path) if method == "GET" else client.post(path, data={})
    status, body = response.status_code, response.get_data().decode("utf-8", "replace")
    if params & OBJECT_PARAMS:
        allowed = {404} if role == "admin" else {403, 404}  # a viewer's POST stops at the role check first
        assert status in allowed, f"{method} {path} answered {status} to DE01's {role} for a DE02 record"
    elif endpoint in ORG_ADMIN:
        assert status == 403, f"{method} {path} answered {status} to DE01's {role}: organisation admins only"
    elif endpoint in OWN_ENTITY or endpoint in OWN_ACCOUNT:
        assert status < 500, f"{method} {path} answered {status}"
    else:
        pytest.fail(f"{endpoint} ({rule}) is in no list of tests/web/test_entity_access.py: say whether it shows a "
                    "record of a legal entity (check it with entity_record_or_404), is organisation-wide "
                    "(org_admin_required), works on the user's current legal entity, or on their own account")
    assert SECRET_NAME not in body and other_entity["number"] not in body, f"{method} {path} shows DE02's data"


BULK_ACTIONS = ("/invoices/bulk/post", "/invoices/bulk/resend")


@pytest.mark.parametrize("path", BULK_ACTIONS)
def test_bulk_actions_refuse_another_entitys_invoices(client_in, other_entity, app, path):
    """The bulk actions take invoice ids from the query or the form, not the path: one of another legal entity,
    alone or among the user's own, is not found (404) and nothing is done to it; the export leaves it out."""
    client = client_in("DE01", "admin")
    with app.app_context():
        own = make_contract(db.session.scalar(select(LegalEntity).filter_by(code="DE01")), "C-OWN",
                            start=date(2026, 11, 1))
        db.session.commit()
        run = start_billing_run(own.legal_entity, date(2026, 11, 26), "cli", ACTOR, enqueue=False)
        execute_run(run.run.id, inline=True)
        own_id = db.session.scalar(select(Invoice.id).where(Invoice.contract_id == own.id))
    foreign = other_entity["invoice_id"]
    for ids in ([foreign], [own_id, foreign]):
        query = "selected=1" + "".join(f"&invoice={i}" for i in ids)
        step = client.get(f"{path}?{query}")
        acted = client.post(path, data={"selected": "1", "invoice": ids, "confirm_token": "x"})
        for response in (step, acted):
            assert response.status_code == 404, f"{path} with DE02's invoice answered {response.status_code}"
            assert other_entity["number"] not in response.get_data(as_text=True)
    export = client.get(f"/invoices.csv?selected=1&invoice={foreign}&invoice={own_id}").get_data(as_text=True)
    assert other_entity["number"] not in export and SECRET_NAME not in export and "C-OWN" in export
    with app.app_context():
        from app.models import InvoiceDelivery

        assert db.session.get(Invoice, foreign).number == other_entity["number"]
        assert db.session.scalar(select(InvoiceDelivery.id).where(InvoiceDelivery.invoice_id == foreign)) is None


def test_the_entity_switcher_offers_only_the_users_entities(client_in, other_entity, app):
    client = client_in("DE01", "accountant")
    html = client.get("/").get_data(as_text=True)
    assert "DE01" in html and "DE02" not in html
    with app.app_context():
        de02 = db.session.scalar(select(LegalEntity.id).where(LegalEntity.code == "DE02"))
    assert client.post("/entity", data={"entity": de02}).status_code == 404


def test_a_user_with_roles_in_two_entities_acts_in_each_as_their_role_there(client_in, other_entity, app, runner):
    client = client_in("DE01", "viewer")
    assert runner.invoke(args=["users", "grant", "viewer.de01@example.com", "--entity", "DE02",
                               "--role", "accountant"]).exit_code == 0
    client = client_in("DE01", "viewer")  # the grant ended nothing: a new login sees both
    assert client.get(f"/invoices/{other_entity['invoice_id']}").status_code == 200  # may see DE02's invoice
    assert client.post(f"/invoices/{other_entity['invoice_id']}/resend").status_code in (403, 302, 303, 200)
    with app.app_context():
        de02 = db.session.scalar(select(LegalEntity.id).where(LegalEntity.code == "DE02"))
    assert client.post("/entity", data={"entity": de02}).status_code in (302, 303)
    # in DE02 they are an accountant: the Run button is theirs there
    assert "Run" in client.get("/agents/billing_run").get_data(as_text=True)
    out = runner.invoke(args=["users", "revoke", "viewer.de01@example.com", "--entity", "DE02"])
    assert out.exit_code == 0, out.output
    assert client.get("/").status_code == 302  # the revoke ended their sessions
    again = client_in("DE01", "viewer")
    assert again.get(f"/invoices/{other_entity['invoice_id']}").status_code == 404


def test_users_cli_create_grant_revoke_and_list(runner, app, other_entity):
    out = runner.invoke(args=["users", "create", "--email", "fr@example.com", "--role", "accountant",
                              "--entity", "DE02", "--password", "a long enough passphrase 7"])
    assert out.exit_code == 0 and "accountant in DE02" in out.output, out.output
    assert runner.invoke(args=["users", "grant", "fr@example.com", "--entity", "DE01", "--role", "viewer"]).exit_code == 0
    import json

    listed = {u["email"]: u for u in json.loads(runner.invoke(args=["users", "list", "--json"]).output)}
    assert listed["fr@example.com"]["role"] is None
    assert listed["fr@example.com"]["entities"] == {"DE01": "viewer", "DE02": "accountant"}
    bad = runner.invoke(args=["users", "revoke", "fr@example.com", "--entity", "XX99"])
    assert bad.exit_code != 0
    assert runner.invoke(args=["users", "revoke", "nobody@example.com", "--entity", "DE01"]).exit_code == 1
    out = runner.invoke(args=["users", "create", "--email", "org@example.com", "--role", "admin",
                              "--password", "a long enough passphrase 8"])
    assert "admin of the organisation" in out.output
