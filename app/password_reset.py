"""Password reset by e-mail.

Anyone may ask for a reset link for an address; the answer is the same whether or not an account has that address
(the request is audited and counted alike either way, and the e-mail goes out after the answer, see
`deliver_reset_mail`). A link carries a token signed with SECRET_KEY that names the user and a fingerprint of their
current password hash: it works for PASSWORD_RESET_MAX_AGE_SECONDS and only until the password changes — so once,
since using it changes the password. Setting the new password follows the Security page's rule
(app.accounts.set_new_password) and ends every session of the user; the second factor stays as it was, and signing in
afterwards asks for it as always.
"""
from __future__ import annotations

import hashlib
import hmac
from email.message import EmailMessage

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import select

from app.transactions import transactional
from app.accounts import account_link, check_email, find_user, set_new_password, signed_links
from app.audit import Actor, record, request_origin
from app.delivery.mail import build_message, send
from app.errors import AccountError, MailError, ResetLinkError
from app.extensions import db
from app.models import User

PURPOSE = "password-reset"
ACTOR = Actor.system("password reset")


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds % 3600 else f"{seconds // 3600} hour{'s' if seconds > 3600 else ''}"


def link_lifetime() -> str:
    """How long a reset link works, in words ("1 hour")."""
    return _minutes(max(current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"], 60))


def _fingerprint(user: User) -> str:
    """Changes whenever the password does; reveals nothing of the hash (keyed with SECRET_KEY)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def reset_token(user: User) -> str:
    return signed_links(PURPOSE).dumps({"u": user.id, "p": _fingerprint(user)})


def _first_in_interval(address: str) -> bool:
    """At most one e-mail per address and PASSWORD_RESET_MAIL_INTERVAL_SECONDS (counted in Redis for known and
    unknown addresses alike). Without Redis: yes."""
    from redis.exceptions import RedisError

    from app.queues import get_redis

    config = current_app.config
    key = f"{config['RATELIMIT_KEY_PREFIX']}-reset:{hashlib.sha256(address.encode()).hexdigest()}"
    try:
        return bool(get_redis().set(key, 1, nx=True, ex=max(1, config["PASSWORD_RESET_MAIL_INTERVAL_SECONDS"])))
    except RedisError:
        return True


@transactional
def request_password_reset(email: str) -> EmailMessage | None:
    """Someone asks for a reset link for `email`: the e-mail to send (None when there is nobody to send it to: no
    such account, a disabled one, one still waiting for its invitation, or a link sent moments ago). Audited either
    way; the caller answers the same in every case and then sends the message (deliver_reset_mail)."""
    try:
        address = check_email(email)
    except AccountError:
        address = (email or "").strip().lower()[:254]
    first = _first_in_interval(address)
    user = find_user(address) if address else None
    eligible = user is not None and user.active and user.has_password
    record("user.password_reset_requested", "user", user.id if user else None, ACTOR, email=address,
           mailed=bool(eligible and first), **request_origin())
    if not (eligible and first):
        return None
    link = account_link("auth.reset_password", token=reset_token(user))
    body = (f"Hello,\n\nsomeone (we hope you) asked to reset the password of your Arbill account {user.email}.\n"
            f"Set a new password here; the link works once, for {link_lifetime()}:\n\n{link}\n\n"
            "If you did not ask for this, ignore this e-mail: your password stays as it is.\n"
            "Your second factor (the code from your authenticator app) is still asked for when you sign in.\n")
    return build_message(user.email, "Reset your Arbill password", body)


def deliver_reset_mail(message: EmailMessage) -> None:
    """Send a reset e-mail (after the answer went out: the asker learns nothing from how long sending takes). A
    failure is logged and audited; the person may ask again."""
    try:
        send(message)
    except MailError as error:
        current_app.logger.error("password reset e-mail not sent: %s", error)
        user = find_user(message["To"])
        record("user.password_reset_mail_failed", "user", user.id if user else None, ACTOR, email=message["To"],
               error=str(error))
        db.session.commit()


def user_for_token(token: str, *, lock: bool = False) -> User:
    """The user a reset link is for, while it works; ResetLinkError saying why not."""
    max_age = current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"]
    try:
        data = signed_links(PURPOSE).loads(token, max_age=max_age)
    except SignatureExpired:
        raise ResetLinkError(f"This password reset link has expired (links work for {link_lifetime()}). "
                             "Ask for a new one.") from None
    except BadSignature:
        data = None
    user = None
    if isinstance(data, dict) and isinstance(data.get("u"), int):
        query = select(User).where(User.id == data["u"])
        user = db.session.scalar(query.with_for_update() if lock else query)
    if user is None or not user.active or not user.has_password or not hmac.compare_digest(
            str(data.get("p", "")), _fingerprint(user)):
        raise ResetLinkError("This password reset link does not work any more: it was used already, the password "
                             "was changed since it was sent, or it was not copied whole. Ask for a new one.")
    return user


@transactional
def reset_password(token: str, new: str, again: str) -> User:
    """Set the password of the link's user (the link stops working: it was bound to the old one); every session of
    theirs ends."""
    user = user_for_token(token, lock=True)
    set_new_password(user, new, again)
    record("user.password_reset", "user", user.id, Actor.for_user(user), email=user.email, **request_origin())
    return user
