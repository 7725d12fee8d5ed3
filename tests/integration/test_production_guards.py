"""What production refuses: the development mail sink, and the demo data with its published password."""
import pytest
from sqlalchemy import func, select

from app.delivery.mail import MailError, build_message, send
from app.extensions import db
from app.models import User


def test_production_refuses_to_hand_mail_to_the_development_sink(app, mail_sink):
    """The sink keeps mail and delivers nothing: invoices "sent" through it never reach a customer."""
    with app.app_context():
        app.config["MAIL_REFUSE_DEVELOPMENT_SINK"] = True
        try:
            with pytest.raises(MailError, match="development mail sink"):
                send(build_message("bolt@example.com", "Invoice", "Hello"))
        finally:
            app.config["MAIL_REFUSE_DEVELOPMENT_SINK"] = False
        assert mail_sink.messages() == []
        send(build_message("bolt@example.com", "Invoice", "Hello"))  # development and tests use it
        assert len(mail_sink.messages()) == 1


def test_production_does_not_load_the_demo_and_its_published_admin_password(app, runner):
    app.config["DEMO_DATA_ALLOWED"] = False
    try:
        result = runner.invoke(args=["demo", "seed"])
    finally:
        app.config["DEMO_DATA_ALLOWED"] = True
    assert result.exit_code == 1 and "production does not load the demo data" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
