"""Agents > Orchestration: everyone reads the rules; admins enable, disable, add and delete them (audited)."""
import pytest
from sqlalchemy import select

from app.agents.events import subscribers
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, OrchestrationRule

ROLES = ("viewer", "accountant", "admin")
URL = "/agents/orchestration"


def rule_id(app, event_type: str, agent_key: str) -> int | None:
    with app.app_context():
        return db.session.scalar(select(OrchestrationRule.id).where(OrchestrationRule.event_type == event_type,
                                                                    OrchestrationRule.agent_key == agent_key))


def issued_subscribers(app) -> list[str]:
    with app.app_context():
        return subscribers("invoice.issued")


def audits(app, action: str) -> list[dict]:
    with app.app_context():
        return [{"subject": e.subject_id, "actor": e.actor_label, **e.details}
                for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == action))]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_rules_and_the_note(client_as, role):
    response = client_as(role).get(URL)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "invoice.issued" in html and "Invoice Delivery Agent" in html and "Payment Collection Agent" in html
    assert "payment.retry_scheduled" in html and "billing.run_requested" in html
    text = " ".join(html.split())
    assert ("Each rule asks an agent to act when something happens, e.g. “when an invoice is issued, the Invoice "
            "Delivery Agent e-mails it”.") in text and "stop after 5 steps" in text
    assert "relay" not in text and "EVENT_CHAIN_MAX_DEPTH" not in text  # the finance team's words, not ours
    assert "An invoice is issued" in text and "A failed collection is due for another try" in text
    assert ("Add rule" in html) is (role == "admin")
    assert ("Disable" in html) is (role == "admin")


@pytest.mark.parametrize("role", ("viewer", "accountant"))
def test_only_admins_change_rules(app, client_as, role):
    client = client_as(role)
    delivery = rule_id(app, "invoice.issued", "invoice_delivery")
    responses = [client.post(f"{URL}/rules/{delivery}/disable"), client.post(f"{URL}/rules/{delivery}/enable"),
                 client.post(f"{URL}/rules/{delivery}/delete"),
                 client.post(f"{URL}/rules", data={"event_type": "invoice.paid", "agent_key": "invoice_delivery"})]
    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert issued_subscribers(app) == ["invoice_delivery", "payment_collection"]
    assert rule_id(app, "invoice.paid", "invoice_delivery") is None


def test_admin_disables_and_enables_a_rule_audited_and_the_relay_follows(app, admin_client):
    delivery = rule_id(app, "invoice.issued", "invoice_delivery")
    response = admin_client.post(f"{URL}/rules/{delivery}/disable")
    assert response.status_code == 303
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Rule “when an invoice is issued → Invoice Delivery Agent” disabled." in page
    assert issued_subscribers(app) == ["payment_collection"]
    assert audits(app, "orchestration.rule_disabled") == [
        {"subject": delivery, "actor": "admin@example.com", "event_type": "invoice.issued", "agent": "invoice_delivery"}]
    admin_client.post(f"{URL}/rules/{delivery}/disable")  # again: nothing changes, nothing is audited
    assert len(audits(app, "orchestration.rule_disabled")) == 1
    assert admin_client.post(f"{URL}/rules/{delivery}/enable").status_code == 303
    assert issued_subscribers(app) == ["invoice_delivery", "payment_collection"]
    assert audits(app, "orchestration.rule_enabled")[0]["agent"] == "invoice_delivery"
    assert admin_client.post(f"{URL}/rules/999/enable").status_code == 404
    assert admin_client.post(f"{URL}/rules/{delivery}/disable", csrf=False).status_code == 400


def test_admin_deletes_and_adds_a_rule_audited_and_the_relay_follows(app, admin_client):
    delivery = rule_id(app, "invoice.issued", "invoice_delivery")
    assert admin_client.post(f"{URL}/rules/{delivery}/delete").status_code == 303
    assert issued_subscribers(app) == ["payment_collection"]
    assert audits(app, "orchestration.rule_deleted") == [
        {"subject": delivery, "actor": "admin@example.com", "event_type": "invoice.issued", "agent": "invoice_delivery"}]
    response = admin_client.post(f"{URL}/rules", data={"event_type": " invoice.issued ", "agent_key": "invoice_delivery"})
    assert response.status_code == 303
    assert ("Rule added: when an invoice is issued, the Invoice Delivery Agent is asked to act (invoice.issued)."
            in admin_client.get(URL).get_data(as_text=True))
    assert issued_subscribers(app) == ["payment_collection", "invoice_delivery"]
    added = rule_id(app, "invoice.issued", "invoice_delivery")
    assert audits(app, "orchestration.rule_added") == [
        {"subject": added, "actor": "admin@example.com", "event_type": "invoice.issued", "agent": "invoice_delivery"}]


def test_a_new_event_gets_a_note_when_the_agent_does_not_declare_it(app, admin_client):
    admin_client.post(f"{URL}/rules", data={"event_type": "invoice.paid", "agent_key": "invoice_delivery"})
    page = admin_client.get(URL).get_data(as_text=True)
    assert "it may ignore this one" in page and "not among the agent's trigger events" in page
    with app.app_context():
        assert subscribers("invoice.paid") == ["invoice_delivery"]


def test_a_duplicate_or_malformed_rule_is_refused_with_a_message(app, admin_client):
    duplicate = admin_client.post(f"{URL}/rules", data={"event_type": "invoice.issued", "agent_key": "payment_collection"})
    assert duplicate.status_code == 422
    assert "a rule already runs the Payment Collection Agent on invoice.issued" in duplicate.get_data(as_text=True)
    for event_type, message in (("Invoice Paid", "is not an event type: lower-case words joined by a dot"),
                                ("invoice", "is not an event type"), ("", "event type is required"),
                                ("a." + "b" * 70, "at most 64 characters")):
        response = admin_client.post(f"{URL}/rules", data={"event_type": event_type, "agent_key": "billing_run"})
        assert response.status_code == 422 and message in response.get_data(as_text=True), event_type
    unknown = admin_client.post(f"{URL}/rules", data={"event_type": "invoice.paid", "agent_key": "nope"})
    assert unknown.status_code == 422 and "choose one of the agents" in unknown.get_data(as_text=True)
    assert audits(app, "orchestration.rule_added") == []
    with app.app_context():
        assert db.session.scalar(select(OrchestrationRule).where(OrchestrationRule.event_type == "invoice.paid")) is None


def test_a_rule_of_a_disabled_agent_says_it_does_not_run(app, client_as):
    with app.app_context():
        db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).enabled = False
        db.session.commit()
    html = client_as("viewer").get(URL).get_data(as_text=True)
    assert "the agent is disabled under Agents &gt; Definitions: it does not run" in html


def test_delete_through_htmx_redirects_the_page(app, admin_client):
    delivery = rule_id(app, "invoice.issued", "invoice_delivery")
    response = admin_client.post(f"{URL}/rules/{delivery}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == URL
    assert rule_id(app, "invoice.issued", "invoice_delivery") is None
