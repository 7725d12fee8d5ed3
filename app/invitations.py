"""Invitations: an admin invites a person by e-mail with a role (in every legal entity, or in one); the person sets
their own password (and name) from the link.

The account exists from the invitation on, with its role and no usable password, so the Users page lists it
("Invitation sent …"). The link carries a token signed with SECRET_KEY naming the invitation and how many e-mails
were sent for it: it works for INVITATION_MAX_AGE_SECONDS, until it is accepted or withdrawn, and a Resend retires
the links sent before. Withdrawing deletes the never-used account (its link then says so). The e-mail is sent at
once, in the admin's request, so that the admin learns whether the mail server took it.
"""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import select

from app.transactions import transactional
from app.accounts import account_link, add_user, set_new_password, signed_links
from app.audit import Actor, record, request_origin
from app.delivery.mail import build_message, send
from app.errors import AccountError, InvitationLinkError, InvitationNotSent, MailError
from app.extensions import db
from app.models import Invitation, LegalEntity, User
from app.models.types import utcnow

PURPOSE = "invitation"
NAME_MAX = 120


def lifetime() -> str:
    seconds = current_app.config["INVITATION_MAX_AGE_SECONDS"]
    days, hours = divmod(seconds, 86400)
    return f"{days} days" if days > 1 and not hours else f"{max(seconds // 3600, 1)} hours"


def open_invitations() -> dict[int, Invitation]:
    """User id → the open invitation of each account still waiting for it (not one an admin gave a password)."""
    rows = db.session.scalars(select(Invitation).join(User, User.id == Invitation.user_id)
                              .where(User.password_hash.is_(None), Invitation.accepted_at.is_(None),
                                     Invitation.withdrawn_at.is_(None)))
    return {invitation.user_id: invitation for invitation in rows}


def open_invitation_of(user: User) -> Invitation | None:
    invitation = db.session.scalar(select(Invitation).where(Invitation.user_id == user.id))
    return invitation if invitation is not None and invitation.is_open and not user.has_password else None


@transactional
def invite_user(email: str, role: str, actor: Actor, *, entity: LegalEntity | None = None) -> Invitation:
    """The account of an invited person, with `role` in every legal entity or (with `entity`) in that one, and its
    invitation, not yet sent (send_invitation). Audited."""
    user = add_user(email, role, None, actor, entity=entity, action="user.invited")
    invitation = Invitation(user_id=user.id, email=user.email, invited_by_id=actor.user_id)
    db.session.add(invitation)
    db.session.flush()
    return invitation


@transactional(commit_on=(InvitationNotSent,))
def send_invitation(invitation: Invitation, actor: Actor) -> None:
    """E-mail the invitation's link; a new one each time, and the links sent before stop working. InvitationNotSent,
    with the mail server's answer, when it could not go out (audited; nothing else changes)."""
    user = db.session.get(User, invitation.user_id) if invitation.user_id else None
    if user is None or not invitation.is_open or user.has_password:
        raise AccountError("this invitation was accepted or withdrawn already: there is nothing to send")
    sends = invitation.sends + 1
    link = account_link("auth.accept_invitation", token=signed_links(PURPOSE).dumps({"i": invitation.id, "n": sends}))
    inviter = db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
    by = f"{inviter.name or inviter.email} invited you" if inviter else "You are invited"
    body = (f"Hello,\n\n{by} to Arbill, where your finance team runs billing, as {user.email}.\n"
            f"Set your password here (the link works for {lifetime()}):\n\n{link}\n\n"
            "If you did not expect this, ignore this e-mail: no account is usable without it.\n")
    try:
        send(build_message(user.email, "Your invitation to Arbill", body))
    except MailError as error:
        record("user.invitation_mail_failed", "user", user.id, actor, email=user.email, error=str(error),
               **request_origin())
        raise InvitationNotSent(f"the invitation e-mail to {user.email} could not be sent ({error}); the account is "
                                "waiting: press Resend once the mail server is reachable") from None
    invitation.sends, invitation.sent_at = sends, utcnow()
    record("user.invitation_sent", "user", user.id, actor, email=user.email, sends=sends, **request_origin())


@transactional
def withdraw_invitation(user: User, actor: Actor) -> None:
    """Withdraw the open invitation of `user`: the never-used account is deleted with its roles, and its link says
    it was withdrawn."""
    invitation = open_invitation_of(user)
    if invitation is None:
        raise AccountError(f"{user.email} has no open invitation (accepted already?): disable the account instead")
    user_id, email = user.id, user.email
    invitation.withdrawn_at, invitation.user_id = utcnow(), None
    db.session.flush()
    db.session.delete(user)
    record("user.invitation_withdrawn", "user", user_id, actor, email=email, **request_origin())


def invitation_for_token(token: str, *, lock: bool = False) -> tuple[Invitation, User]:
    """The open invitation a link is for, and its account; InvitationLinkError saying why the link does not work."""
    try:
        data = signed_links(PURPOSE).loads(token, max_age=current_app.config["INVITATION_MAX_AGE_SECONDS"])
    except SignatureExpired:
        raise InvitationLinkError(f"This invitation link has expired (links work for {lifetime()}): ask the admin "
                                  "who invited you to send it again.") from None
    except BadSignature:
        data = None
    invitation = None
    if isinstance(data, dict) and isinstance(data.get("i"), int):
        query = select(Invitation).where(Invitation.id == data["i"])
        invitation = db.session.scalar(query.with_for_update() if lock else query)
    if invitation is None:
        raise InvitationLinkError("This invitation link is not valid: check that it was copied whole from the "
                                  "e-mail, or ask an admin to send the invitation again.")
    if invitation.withdrawn_at is not None:
        raise InvitationLinkError("This invitation was withdrawn by an admin: ask them if you should have an "
                                  "account.")
    user = db.session.get(User, invitation.user_id)
    if invitation.accepted_at is not None or user.has_password:
        raise InvitationLinkError("This invitation was accepted already: sign in with your e-mail address and "
                                  "password (forgot it? \"Forgot your password?\" on the sign-in page).")
    if data.get("n") != invitation.sends:
        raise InvitationLinkError("A newer invitation was sent to you since this one: use the link in the latest "
                                  "e-mail.")
    return invitation, user


@transactional
def accept_invitation(token: str, name: str, password: str, again: str) -> User:
    """The invited person sets their password (by the password rule) and name; the account becomes usable and the
    link stops working. Admins set up their second factor at their first sign-in, as always."""
    invitation, user = invitation_for_token(token, lock=True)
    name = " ".join((name or "").split())
    if len(name) > NAME_MAX:
        raise AccountError(f"the name is longer than {NAME_MAX} characters")
    set_new_password(user, password, again)
    user.name = name or None
    invitation.accepted_at = utcnow()
    record("user.invitation_accepted", "user", user.id, Actor.for_user(user), email=user.email, **request_origin())
    return user
