"""Signing in: growing delays between failed attempts, the TOTP second factor and its recovery codes.

Delays, not locks. Every attempt on an account (a password, a second-factor code, the current password asked again
on the Security page) is counted before it is checked, by one atomic UPDATE that also sets when the next attempt may
come: after LOGIN_FREE_ATTEMPTS failures each further attempt waits 2^k seconds (k = failures beyond the free ones),
at most LOGIN_DELAY_MAX_SECONDS. An attempt that comes earlier is refused without its password or code being
checked; a right one after the wait still works. Failures further apart than LOGIN_FAILURE_DECAY_SECONDS start the
count again. However many attempts arrive at once, only one per delay is checked.

The second factor (RFC 6238, 30-second steps, the step before and after accepted for clock drift): a code is
accepted once — the step it belongs to is stored and no code of that step or an earlier one is taken again. Ten
recovery codes (80 random bits each, only their SHA-256 kept) each stand in for a code once.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime, timedelta

import functools

import pyotp
from flask import current_app
from markupsafe import Markup
from sqlalchemy import case, delete, func, literal, null, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.transactions import transactional
from app.accounts import check_email, find_user, set_new_password
from app.audit import Actor, record, request_origin
from app.errors import AccountError
from app.extensions import db
from app.models import RecoveryCode, User
from app.models.types import UTCDateTime, utcnow

RECOVERY_CODES = 10
TOTP_ISSUER = "Arbill"
DELAYED = "Too many failed attempts for this account: try again in {seconds} s."
# Every wrong password gets this answer, for a known address or not.
REFUSED = "E-mail or password is wrong."


# ------------------------------------------------------------------ growing delays
@dataclass
class Attempt:
    """An attempt counted: `allowed`, or refused for `wait` more seconds."""

    allowed: bool
    wait: int = 0

    @property
    def message(self) -> str:
        return DELAYED.format(seconds=self.wait)


def delay_after(failures: int) -> int:
    """Seconds the attempt after `failures` consecutive failures has to wait (0: none)."""
    config = current_app.config
    beyond = failures - config["LOGIN_FREE_ATTEMPTS"]
    if beyond < 0:
        return 0
    return min(2 ** min(beyond, 32), config["LOGIN_DELAY_MAX_SECONDS"])


def begin_attempt(user_id: int, now: datetime | None = None) -> Attempt:
    """Count one attempt on the account, atomically, before anything is checked (commits)."""
    config = current_app.config
    now = now or utcnow()
    quiet_since = now - timedelta(seconds=config["LOGIN_FAILURE_DECAY_SECONDS"])
    count = case((or_(User.last_failed_login_at.is_(None), User.last_failed_login_at < quiet_since), 1),
                 else_=User.failed_logins + 1)
    # Pessimistic: the delay this attempt causes if it fails is set now, so parallel attempts wait for it too;
    # a success clears it. One branch per doubling up to the cap, the rest capped.
    steps, free = [], config["LOGIN_FREE_ATTEMPTS"]
    for failures in range(free, free + 33):
        seconds = delay_after(failures)
        steps.append((count == failures, literal(now + timedelta(seconds=seconds), UTCDateTime())))
        if seconds >= config["LOGIN_DELAY_MAX_SECONDS"]:
            break
    delayed_until = case((count < free, null()), *steps,
                         else_=literal(now + timedelta(seconds=config["LOGIN_DELAY_MAX_SECONDS"]), UTCDateTime()))
    counted = db.session.execute(
        update(User)
        .where(User.id == user_id, or_(User.login_delayed_until.is_(None), User.login_delayed_until <= now))
        .values(failed_logins=count, last_failed_login_at=now, login_delayed_until=delayed_until)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar()
    if counted is not None:
        db.session.commit()
        return Attempt(True)
    until = db.session.scalar(select(User.login_delayed_until).where(User.id == user_id))
    wait = max(1, math.ceil((until - now).total_seconds())) if until else 1
    record("user.login_delayed", "user", user_id, Actor.system("sign-in throttle"), wait_seconds=wait,
           **request_origin())
    db.session.commit()
    return Attempt(False, wait)


def _unknown_address_attempt(address: str) -> Attempt:
    """An address without an account is delayed as an account would be (counted in Redis by a hash of the address,
    forgotten after LOGIN_FAILURE_DECAY_SECONDS), so the answers do not tell which addresses have accounts.
    Without Redis: no delay (there is no account to protect)."""
    from redis.exceptions import RedisError

    from app.queues import get_redis

    config = current_app.config
    key = f"{config['RATELIMIT_KEY_PREFIX']}-unknown:{hashlib.sha256(address.encode()).hexdigest()}"
    now = time.time()
    try:
        redis = get_redis()
        failures, until = (float(value or 0) for value in redis.hmget(key, "failures", "until"))
        if until > now:
            return Attempt(False, max(1, math.ceil(until - now)))
        failures = int(failures) + 1
        redis.hset(key, mapping={"failures": failures, "until": now + delay_after(failures)})
        redis.expire(key, config["LOGIN_FAILURE_DECAY_SECONDS"])
    except RedisError:
        pass
    return Attempt(True)


def attempt_succeeded(user_id: int) -> None:
    """The account's attempts were proven right: no delay, the count starts again (the caller commits)."""
    db.session.execute(update(User).where(User.id == user_id)
                       .values(failed_logins=0, last_failed_login_at=None, login_delayed_until=None)
                       .execution_options(synchronize_session=False))


def check_current_password(user: User, password: str) -> None:
    """AccountError unless `password` is the user's (counted like a sign-in: asked again before a sensitive
    change, it must not be a way around the delays)."""
    attempt = begin_attempt(user.id)
    if not attempt.allowed:
        raise AccountError(attempt.message)
    db.session.refresh(user)
    if not user.check_password(password or ""):
        record("user.password_check_failed", "user", user.id, Actor.for_user(user), **request_origin())
        db.session.commit()
        raise AccountError("the current password is wrong")
    attempt_succeeded(user.id)


# ------------------------------------------------------------------ the password
@dataclass
class LoginResult:
    """A password check: `user` when it was right; `next_step` then says what the sign-in still needs:
    None (signed in), "second_factor" (a code) or "enrol" (an admin without a second factor sets one up)."""

    user: User | None
    error: str | None = None
    next_step: str | None = None


@functools.cache
def _dummy_hash() -> str:
    """A hash of the same method and cost as real ones, checked for unknown addresses."""
    return generate_password_hash("no user has this password")


def authenticate(email: str, password: str) -> LoginResult:
    """Check an e-mail address and password under the account's delays (commits what it audits)."""
    try:
        address = check_email(email)
    except AccountError:
        address = None
    user = find_user(address) if address else None
    if user is None:
        attempt = _unknown_address_attempt(address or (email or "").strip().lower())
        if not attempt.allowed:
            return LoginResult(None, attempt.message)
        check_password_hash(_dummy_hash(), password)  # the same work as for a known address
        record("user.login_failed", "user", None, Actor.system("sign-in"), email=(email or "")[:254],
               **request_origin())
        db.session.commit()
        return LoginResult(None, REFUSED)
    user_id = user.id
    db.session.rollback()  # nothing of the user's row is held while the password is hashed
    attempt = begin_attempt(user_id)
    if not attempt.allowed:
        return LoginResult(None, attempt.message)  # the password is not even looked at
    user = db.session.get(User, user_id)
    if not user.has_password:
        check_password_hash(_dummy_hash(), password)  # an invited account answers like any other
    if not user.check_password(password):
        record("user.login_failed", "user", user_id, Actor.system("sign-in"), email=user.email, **request_origin())
        wait = delay_after(user.failed_logins)
        if wait:
            record("user.login_delay_started", "user", user_id, Actor.system("sign-in throttle"), email=user.email,
                   failures=user.failed_logins, wait_seconds=wait, **request_origin())
        db.session.commit()
        return LoginResult(None, REFUSED)
    if not user.active:
        db.session.commit()
        return LoginResult(None, "This account is disabled: ask an admin to enable it.")
    next_step = "second_factor" if user.has_second_factor else "enrol" if user.needs_second_factor else None
    if next_step is None:
        attempt_succeeded(user_id)  # with a second step to come, its failures still count against the account
    db.session.commit()
    db.session.refresh(user)
    return LoginResult(user, next_step=next_step)


# ------------------------------------------------------------------ TOTP
def totp_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step (the one before or after for clock drift) whose code `code` is, or None."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or utcnow())
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_step(user_id: int, step: int) -> bool:
    """Mark the step used, atomically; False when a code of this step (or a later one) was accepted already."""
    return db.session.execute(
        update(User).where(User.id == user_id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False)
    ).rowcount == 1


def _normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters, 80 bits
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash(code)) for code in codes)
    return codes


@dataclass
class SecondFactor:
    """A second factor that passed: how, and how many recovery codes are left."""

    method: str  # "totp" or "recovery code"
    recovery_codes_left: int | None = None


@transactional
def check_second_factor(user: User, code: str) -> SecondFactor:
    """Check a code or a recovery code of an enrolled user; AccountError if wrong, used before or too early.
    Counted like a password attempt; on success the account's failures are cleared."""
    attempt = begin_attempt(user.id)
    if not attempt.allowed:
        raise AccountError(attempt.message)
    db.session.refresh(user)
    code = _normalise(code)
    passed = None
    if user.totp_enabled_at is not None and re.fullmatch(r"\d{6}", code):
        step = totp_step(user.totp_secret, code)
        if step is not None and _use_step(user.id, step):
            passed = SecondFactor("totp")
        elif step is not None:
            record("user.second_factor_replayed", "user", user.id, Actor.for_user(user), **request_origin())
    elif user.totp_enabled_at is not None and len(code) == 16:
        used = db.session.execute(
            update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash(code),
                                       RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if used == 1:
            left = recovery_codes_left(user)
            record("user.recovery_code_used", "user", user.id, Actor.for_user(user), left=left, **request_origin())
            passed = SecondFactor("recovery code", left)
    if passed is None:
        record("user.second_factor_failed", "user", user.id, Actor.for_user(user), **request_origin())
        db.session.commit()
        raise AccountError("That code is wrong or was used already: enter the current code from your "
                           "authenticator app, or one of your recovery codes.")
    attempt_succeeded(user.id)
    return passed


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))


# ------------------------------------------------------------------ enrolment
@transactional
def start_enrolment(user: User) -> str:
    """The secret the user is enrolling (a new one the first time; the same one until confirmed)."""
    if user.has_second_factor:
        raise AccountError("two-step sign-in is on already: turn it off first to enrol another device")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()  # 160 bits
    return user.totp_secret


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(
        name=user.email, issuer_name=current_app.config.get("TOTP_ISSUER", TOTP_ISSUER))


def qr_svg(uri: str) -> Markup:
    """The QR code of `uri` as inline SVG (no script, no style attribute: the CSP allows it)."""
    import segno

    return Markup(segno.make(uri, error="m").svg_inline(scale=5, svgclass="qr", lineclass=None, dark="#000",
                                                        light="#fff", title="QR code for your authenticator app"))


@transactional
def confirm_enrolment(user: User, code: str, actor: Actor) -> list[str]:
    """Turn the second factor on once `code` proves the authenticator has the secret; the new recovery codes
    (shown once, only their hashes kept). AccountError if the code is wrong."""
    if user.has_second_factor or not user.totp_secret:
        raise AccountError("start the enrolment again: there is no secret waiting to be confirmed")
    attempt = begin_attempt(user.id)  # counted like any code: enrolment is no way around the delays
    if not attempt.allowed:
        raise AccountError(attempt.message)
    db.session.refresh(user)
    step = totp_step(user.totp_secret, _normalise(code))
    if step is None or not _use_step(user.id, step):
        record("user.second_factor_failed", "user", user.id, actor, enrolment=True, **request_origin())
        db.session.commit()
        raise AccountError("That code does not match: check the time on your phone and enter the current code.")
    attempt_succeeded(user.id)
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(user)
    record("user.second_factor_enabled", "user", user.id, actor, email=user.email, **request_origin())
    return codes


@transactional
def regenerate_recovery_codes(user: User, actor: Actor) -> list[str]:
    """New recovery codes; the old ones stop working."""
    if not user.has_second_factor:
        raise AccountError("turn two-step sign-in on first")
    codes = _new_recovery_codes(user)
    record("user.recovery_codes_regenerated", "user", user.id, actor, email=user.email, **request_origin())
    return codes


def _clear_second_factor(user: User) -> None:
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


@transactional
def disable_second_factor(user: User, actor: Actor) -> None:
    """Turn the user's own second factor off, unless their roles require it."""
    if user.needs_second_factor:
        raise AccountError("an admin must sign in with a second factor: it cannot be turned off")
    if not user.has_second_factor:
        raise AccountError("two-step sign-in is off already")
    _clear_second_factor(user)
    record("user.second_factor_disabled", "user", user.id, actor, email=user.email, **request_origin())


@transactional
def reset_second_factor(user: User, actor: Actor) -> None:
    """For a user who lost their device (an organisation admin's CLI): the second factor is removed and their
    sessions end; they enrol again at their next sign-in if their roles require it."""
    _clear_second_factor(user)
    user.end_sessions()
    record("user.second_factor_reset", "user", user.id, actor, email=user.email, **request_origin())


# ------------------------------------------------------------------ own password and sessions
@transactional
def change_own_password(user: User, current: str, new: str, actor: Actor, again: str | None = None) -> None:
    """The user changes their own password, proving the current one; every session of theirs ends (the
    caller signs this browser in again)."""
    if again is not None and new != again:
        raise AccountError("the two new passwords differ")
    check_current_password(user, current)
    set_new_password(user, new, again)
    record("user.password_changed", "user", user.id, actor, email=user.email, **request_origin())


@transactional
def sign_out_everywhere(user: User, actor: Actor) -> None:
    """Every session of the user ends, this one too."""
    user.end_sessions()
    record("user.signed_out_everywhere", "user", user.id, actor, email=user.email, **request_origin())

