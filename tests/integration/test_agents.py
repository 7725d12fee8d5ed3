"""Agent definitions: validated, audited configuration."""
from sqlalchemy import select

from app.extensions import db
from app.models import AgentDefinition, AuditEntry
from app.records.validation import ValidationError


def config(app):
    with app.app_context():
        return db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).configuration


def test_agents_list_shows_the_billing_run_agent(runner, app):
    result = runner.invoke(args=["agents", "list"])
    assert result.exit_code == 0
    assert "billing_run" in result.output and "Billing Run Agent" in result.output and "code" in result.output
    assert "schedule.triggered, manual.trigger, billing.run_requested" in result.output


def test_configure_validates_and_audits(runner, app):
    result = runner.invoke(args=["agents", "configure", "billing_run", "auto_post=false", "chunk_size=200"])
    assert result.exit_code == 0, result.output
    assert "auto_post: True → False" in result.output and "chunk_size: 2000 → 200" in result.output
    assert config(app) == {"auto_post": False, "payment_terms_days": 14, "chunk_size": 200, "as_of_offset_days": 0}
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.configured"))
        assert entry.details["changes"]["chunk_size"] == {"old": 2000, "new": 200}


def test_configure_refuses_invalid_values_and_changes_nothing(runner, app):
    for bad, message in [
        ("chunk_size=5", "chunk_size: 5 is below the minimum 10"),
        ("chunk_size=lots", "chunk_size: 'lots' is not a whole number: enter one with the digits 0-9, e.g. 2000"),
        ("chunk_size=", "chunk_size: enter a whole number, e.g. 2000"),
        ("auto_post=maybe", "auto_post: 'maybe' is not yes or no"),
        ("colour=blue", "colour: unknown setting"),
    ]:
        result = runner.invoke(args=["agents", "configure", "billing_run", bad])
        assert result.exit_code == 1 and message in result.output, result.output
    assert config(app)["chunk_size"] == 2000


def test_the_e_mail_subject_must_be_one_line(runner, app):
    """A line break in the subject would break the e-mail's headers on every delivery."""
    from app.agents.registry import get_spec

    spec = get_spec("invoice_delivery")
    try:
        spec.validate_configuration({"subject_template": "Invoice {number}\r\nBcc: all@example.com"})
    except ValidationError as error:
        assert "line break" in error.errors["subject_template"]
    else:
        raise AssertionError("a subject with a line break was accepted")
    assert spec.validate_configuration({"subject_template": "Rechnung {number}"})["subject_template"] == \
        "Rechnung {number}"
