"""Sending e-mail over SMTP with Flask-Mail's settings (MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, …)."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from app.errors import MailError


# What the development mail sink (app/mailsink.py) says in its greeting.
DEVELOPMENT_SINK_MARK = b"Arbill-development-mail-sink"


def build_message(to: str, subject: str, body: str, *, message_id: str | None = None,
                  attachments: list[tuple[str, str, bytes]] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id or make_msgid(domain="arbill")
    message.set_content(body)
    for filename, mimetype, data in attachments:
        maintype, subtype = mimetype.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def send(message: EmailMessage) -> None:
    config = current_app.config
    try:
        smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
        with smtp_class(timeout=30) as smtp:
            _code, greeting = smtp.connect(config["MAIL_SERVER"], int(config["MAIL_PORT"]))
            if config.get("MAIL_REFUSE_DEVELOPMENT_SINK") and DEVELOPMENT_SINK_MARK in greeting:
                raise MailError(f"SMTP {config['MAIL_SERVER']}:{config['MAIL_PORT']} is Arbill's development mail "
                                "sink, which delivers nothing: set MAIL_SERVER to a real SMTP server")
            if config["MAIL_USE_TLS"] and not config["MAIL_USE_SSL"]:
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise MailError(f"SMTP {config['MAIL_SERVER']}:{config['MAIL_PORT']}: {error}") from error


def send_notification(to: str, subject: str, body: str) -> None:
    send(build_message(to, subject, body))
