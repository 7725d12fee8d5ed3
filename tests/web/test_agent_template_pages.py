"""The templates on the agent pages: a webhook agent's Overview shows its delivery log, and its signing secret is
never shown, on any tab."""
from app.agents.custom import CustomAgentInput, create_custom_agent
from app.audit import Actor
from app.extensions import db
from app.models import WebhookDelivery
from tests.factories import make_entity

SECRET = "whsec-never-shown-0123456789"


def test_a_webhook_agents_overview_shows_its_delivery_log_and_never_its_secret(app, client_in):
    with app.app_context():
        entity = make_entity("DE01")
        agent = create_custom_agent(entity, CustomAgentInput(
            template="webhook", name="ERP hook", events=("invoice.issued",), enabled=True,
            settings={"url": "https://erp.example.com/hooks/arbill", "signing_secret": SECRET}), Actor.system("test"))
        db.session.flush()
        db.session.add_all([
            WebhookDelivery(agent_id=agent.id, delivery_key="event:41", event_type="invoice.issued", attempt=1,
                            url="https://erp.example.com/hooks/arbill", status="retrying", response_code=502,
                            error="HTTP 502: the receiver did not accept it (2xx expected)", duration_ms=31),
            WebhookDelivery(agent_id=agent.id, delivery_key="event:41", event_type="invoice.issued", attempt=2,
                            url="https://erp.example.com/hooks/arbill", status="delivered", response_code=200,
                            response_excerpt="ok", duration_ms=12)])
        db.session.commit()
        key = agent.key
    admin = client_in("DE01", "admin")

    overview = admin.get(f"/agents/{key}").get_data(as_text=True)

    log = overview.split('id="webhook-deliveries"', 1)[1]
    assert "Delivery log" in log and "event:41" in log and "502" in log and "12 ms" in log
    assert log.index(">delivered<") < log.index(">retrying<")  # newest first
    for tab in ("", "/configuration", "/versions", "/audit"):
        page = admin.get(f"/agents/{key}{tab}")
        assert page.status_code == 200 and SECRET not in page.get_data(as_text=True), tab
