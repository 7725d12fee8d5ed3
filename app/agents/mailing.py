"""E-mails of the custom agents' templates (AR Aging Reporter, Run summary e-mail): a list of recipients as a
setting, the tester's address for a test run, and one message to the list over the app's one SMTP path
(app/delivery/mail.py)."""
from __future__ import annotations

import re

from app.accounts import AccountError, account_link
from app.agents.base import RunRequest, Setting
from app.delivery.mail import build_message, send
from app.extensions import db
from app.models import User
from app.records.validation import FieldError, parse_email

RECIPIENTS_MAX = 50


def parse_recipients(text: str | None) -> list[str]:
    """Addresses separated by commas, semicolons or line breaks, each by the app's one address rule
    (parse_email), lower case, without repeats; FieldError naming the first bad one."""
    parts = [p.strip() for p in re.split(r"[,;\n\r]+", text or "") if p.strip()]
    if not parts:
        raise FieldError("enter at least one e-mail address, e.g. ar-team@example.com (separate several with commas)")
    addresses: list[str] = []
    for part in parts:
        address = parse_email(part)
        if address not in addresses:
            addresses.append(address)
    if len(addresses) > RECIPIENTS_MAX:
        raise FieldError(f"at most {RECIPIENTS_MAX} addresses (this has {len(addresses)}): use a team address")
    return addresses


def check_recipients(text: str) -> None:
    parse_recipients(text)


def recipients_setting(help_text: str) -> Setting:
    return Setting("recipients", "Recipients", "text", "", help_text, validator=check_recipients)


def tester_address(request: RunRequest) -> str | None:
    """Whom a test run sends to: the user who pressed Test, when they have an address; else nobody."""
    if request.actor.user_id is None:
        return None
    user = db.session.get(User, request.actor.user_id)
    return user.email if user is not None and user.email else None


def send_to_list(addresses: list[str], subject: str, body: str) -> None:
    """One message to every address (they see who else got it); MailError when the SMTP server refuses."""
    send(build_message(", ".join(addresses), subject, body))


def recipients_for(request: RunRequest) -> tuple[list[str], str]:
    """(addresses, in words) for a run: the configured list, or for a test run only the tester (maybe nobody)."""
    if request.test:
        tester = tester_address(request)
        return ([tester], f"the tester {tester} only (a test run)") if tester else (
            [], "nobody (a test run without a user's address)")
    addresses = parse_recipients(request.configuration.get("recipients"))
    return addresses, ", ".join(addresses)


def app_link(endpoint: str, **values) -> str | None:
    """An absolute link into Arbill for an e-mail (BASE_URL); None when the app cannot make one here."""
    try:
        return account_link(endpoint, **values)
    except AccountError:
        return None
