"""Sending mail over SMTP: what production refuses."""
import pytest

from app.delivery.mail import MailError, build_message, send


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
