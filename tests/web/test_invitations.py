"""Invitations by e-mail, against a real SMTP server: an organisation admin invites a person with a role; the person
sets their password from the link and has the role; a link works until accepted, withdrawn or replaced by a Resend;
the admin learns when the mail server did not take the e-mail."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, EntityRole, Invitation, LegalEntity, User
from tests.conftest import free_port, log_in
from tests.factories import make_entity

PASSWORD = "heron ledger meadow plinth"


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def invite(client, email: str, role: str, entity: str = "", **kwargs):
    return client.post("/settings/users/invite", data={"email": email, "role": role, "entity": entity}, **kwargs)


def links(mail_sink, to: str) -> list[str]:
    paths = []
    for message in mail_sink.messages():
        if message["To"] == to:
            url = re.search(r"https?://\S+/invitation/\S+", message.get_body(("plain",)).get_content()).group(0)
            paths.append(urlsplit(url).path)
    return paths


def accept(client, path: str, name: str = "Nora Newcomer", password: str = PASSWORD):
    return client.post(path, data={"name": name, "new_password": password, "new_password_again": password})


def user_id(app, email: str) -> int | None:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def test_an_invited_person_sets_their_password_and_has_the_role(app, admin_client, client, mail_sink):
    with app.app_context():
        make_entity("DE01")
        db.session.commit()
    form = admin_client.get("/settings/users/invite")
    assert form.status_code == 200 and 'name="password"' not in form.get_data(as_text=True)
    sent = invite(admin_client, "Nora@Example.com", "accountant", "DE01", follow_redirects=True)
    page = sent.get_data(as_text=True)
    assert "Invitation sent to nora@example.com as accountant in DE01." in page
    assert "Invitation sent " in page and "Resend" in page and "Withdraw" in page
    (message,) = mail_sink.messages()
    assert message["Subject"] == "Your invitation to Arbill" and "admin@example.com invited you" in message.get_content()
    (path,) = links(mail_sink, "nora@example.com")

    assert log_in(app.test_client(), "nora@example.com", "").status_code in (400, 401)  # no password works yet
    welcome = client.get(path)
    assert welcome.status_code == 200 and "nora@example.com" in welcome.get_data(as_text=True)
    assert accept(client, path, password="short").status_code == 422  # the password rule
    done = accept(client, path)
    assert done.status_code == 303 and "/login?email=nora" in done.headers["Location"]
    assert 'value="nora@example.com"' in client.get(done.headers["Location"]).get_data(as_text=True)

    assert log_in(app.test_client(), "nora@example.com", PASSWORD).headers["Location"].endswith("/")
    with app.app_context():
        nora = db.session.scalar(select(User).where(User.email == "nora@example.com"))
        role = db.session.scalar(select(EntityRole.role).join(LegalEntity, LegalEntity.id == EntityRole.legal_entity_id)
                                 .where(EntityRole.user_id == nora.id, LegalEntity.code == "DE01"))
        assert (nora.name, nora.role, role) == ("Nora Newcomer", None, "accountant")
    twice = client.get(path)
    assert twice.status_code == 410 and "accepted already" in twice.get_data(as_text=True)
    assert accept(client, path, password="another fine passphrase").status_code == 410
    users_page = admin_client.get("/settings/users").get_data(as_text=True)
    assert "Nora Newcomer" in users_page and "Invitation sent" not in users_page
    assert [e.details["email"] for e in audit(app, "user.invited")] == ["nora@example.com"]
    assert audit(app, "user.invitation_sent")[0].actor_label == "admin@example.com"
    assert audit(app, "user.invitation_accepted")[0].subject_id == nora.id


def test_an_invited_admin_sets_up_the_second_factor_at_the_first_sign_in(app, admin_client, client, mail_sink):
    invite(admin_client, "boss@example.com", "admin")
    (path,) = links(mail_sink, "boss@example.com")
    welcome = client.get(path).get_data(as_text=True)
    assert "two-step sign-in" in welcome
    assert accept(client, path).status_code == 303
    password_step = app.test_client().post("/login", data={"email": "boss@example.com", "password": PASSWORD})
    assert password_step.headers["Location"].endswith("/login/enrol")


def test_a_withdrawn_invitation_is_refused_and_its_account_gone(app, admin_client, client, mail_sink):
    invite(admin_client, "nora@example.com", "viewer")
    (path,) = links(mail_sink, "nora@example.com")
    withdrawn = admin_client.post(f"/settings/users/{user_id(app, 'nora@example.com')}/invitation/withdraw",
                                  follow_redirects=True)
    assert "Invitation to nora@example.com withdrawn" in withdrawn.get_data(as_text=True)
    assert user_id(app, "nora@example.com") is None
    refused = client.get(path)
    assert refused.status_code == 410 and "withdrawn" in refused.get_data(as_text=True)
    assert accept(client, path).status_code == 410
    assert audit(app, "user.invitation_withdrawn")[0].details["email"] == "nora@example.com"
    # the address may be invited again, with a new link
    invite(admin_client, "nora@example.com", "viewer")
    assert client.get(links(mail_sink, "nora@example.com")[-1]).status_code == 200


def test_resend_retires_the_earlier_link_and_an_expired_one_is_refused(app, admin_client, client, mail_sink,
                                                                       monkeypatch):
    invite(admin_client, "nora@example.com", "viewer")
    resent = admin_client.post(f"/settings/users/{user_id(app, 'nora@example.com')}/invitation/resend",
                               follow_redirects=True)
    assert "Invitation sent again to nora@example.com" in resent.get_data(as_text=True)
    first, second = links(mail_sink, "nora@example.com")
    old = client.get(first)
    assert old.status_code == 410 and "newer invitation" in old.get_data(as_text=True)
    monkeypatch.setitem(app.config, "INVITATION_MAX_AGE_SECONDS", -1)
    expired = client.get(second)
    assert expired.status_code == 410 and "has expired" in expired.get_data(as_text=True)
    monkeypatch.setitem(app.config, "INVITATION_MAX_AGE_SECONDS", 7 * 24 * 3600)
    assert accept(client, second).status_code == 303
    tampered = client.get(second[:-2] + "xx")
    assert tampered.status_code == 410 and "not valid" in tampered.get_data(as_text=True)


def test_the_admin_learns_when_the_mail_server_does_not_take_the_invitation(app, admin_client, client, mail_sink,
                                                                          monkeypatch):
    working_port = app.config["MAIL_PORT"]
    monkeypatch.setitem(app.config, "MAIL_PORT", free_port())  # nobody listens there
    answer = invite(admin_client, "nora@example.com", "viewer", follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "could not be sent" in page and "press Resend once the mail server is reachable" in page
    assert "invitation not sent" in page
    assert audit(app, "user.invitation_mail_failed")
    with app.app_context():
        assert db.session.scalar(select(Invitation.sent_at)) is None
    monkeypatch.setitem(app.config, "MAIL_PORT", working_port)
    admin_client.post(f"/settings/users/{user_id(app, 'nora@example.com')}/invitation/resend")
    (path,) = links(mail_sink, "nora@example.com")
    assert accept(client, path).status_code == 303


def test_only_an_organisation_admin_invites(app, client_as, client_in, mail_sink):
    with app.app_context():
        make_entity("DE01")
        db.session.commit()
    for someone in (client_as("accountant"), client_as("viewer"), client_in("DE01", "admin")):
        assert invite(someone, "nora@example.com", "viewer", "DE01").status_code == 403
    assert user_id(app, "nora@example.com") is None and mail_sink.messages() == []


def test_an_existing_address_cannot_be_invited(app, admin_client, users, mail_sink):
    answer = invite(admin_client, "viewer@example.com", "viewer")
    assert answer.status_code == 422 and "already exists" in answer.get_data(as_text=True)
    assert mail_sink.messages() == []


def test_invite_from_the_command_line(app, runner, users, mail_sink, monkeypatch):
    with app.app_context():
        make_entity("DE01")
        db.session.commit()
    out = runner.invoke(args=["users", "invite", "nora@example.com", "--role", "viewer", "--entity", "DE01"])
    assert out.exit_code == 1 and "set BASE_URL" in out.output
    monkeypatch.setitem(app.config, "BASE_URL", "https://billing.example.com")
    out = runner.invoke(args=["users", "invite", "nora@example.com", "--role", "viewer", "--entity", "DE01"])
    assert out.exit_code == 0 and "Invited nora@example.com: viewer in DE01" in out.output, out.output
    body = mail_sink.messages()[0].get_body(("plain",)).get_content()
    assert re.search(r"https://billing\.example\.com/invitation/\S+", body), body
    assert audit(app, "user.invited")[0].actor_label == "cli"


def test_a_password_given_by_an_admin_closes_the_invitation(app, admin_client, client, mail_sink):
    invite(admin_client, "nora@example.com", "viewer")
    (path,) = links(mail_sink, "nora@example.com")
    nora = user_id(app, "nora@example.com")
    assert admin_client.post(f"/settings/users/{nora}/edit", data={"role": "viewer", "active": "1",
                                                                    "password": PASSWORD}).status_code == 302
    assert "Withdraw" not in admin_client.get("/settings/users").get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert admin_client.post(f"/settings/users/{nora}/invitation/withdraw", follow_redirects=True).status_code == 200
    assert user_id(app, "nora@example.com") == nora  # an account with a password is disabled, not withdrawn
