"""Signing in and out, the second step, and the user's own Security page. The rules are app/signin.py's; what
lives here is the session: a password accepted but not yet its second factor is kept as `session["signin"]`
(not signed in for Flask-Login) for SECOND_FACTOR_MINUTES, and a signed-in session carries when it was last used
(`seen`, for the idle timeout) and whether it passed a second factor (`mfa`)."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.accounts import log_out, record_sign_in
from app.audit import Actor
from app.errors import AccountError
from app.extensions import db, htmx
from app.models import User
from app.signin import (SecondFactor, authenticate, change_own_password, check_current_password, check_second_factor,
                        confirm_enrolment, disable_second_factor, provisioning_uri, qr_svg,
                        recovery_codes_left, regenerate_recovery_codes, sign_out_everywhere, start_enrolment)
from app.web.auth import bp
from app.web.auth.forms import CodeForm, LoginForm
from app.web.helpers import go_to

PENDING = "signin"


def _safe_next(target: str | None) -> str:
    if target and urlsplit(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.home")


# ------------------------------------------------------------------ the session
def _complete_sign_in(user: User, second_factor: SecondFactor | None, enrolled: bool = False):
    """Sign `user` in for Flask-Login, audited; where to go next."""
    target = _safe_next(session.get(PENDING, {}).get("next") or request.args.get("next"))
    session.pop(PENDING, None)
    login_user(user, remember=False)
    session["seen"], session["mfa"] = int(time.time()), second_factor is not None or enrolled
    method = "enrolment" if enrolled else (second_factor.method if second_factor else None)
    record_sign_in(user, method)
    if second_factor and second_factor.method == "recovery code":
        left = second_factor.recovery_codes_left
        flash(f"You signed in with a recovery code: {left} left. Make new ones on your Security page.",
              "error" if left < 3 else "info")
    return target


def _pending(step: str) -> User | None:
    """The user whose password was accepted for `step` ("second_factor" or "enrol"), while it is fresh."""
    pending = session.get(PENDING)
    if not pending or pending.get("step") != step:
        return None
    if time.time() - pending.get("at", 0) > current_app.config["SECOND_FACTOR_MINUTES"] * 60:
        session.pop(PENDING, None)
        return None
    user = db.session.get(User, pending.get("user"))
    if user is None or not user.active or user.session_version != pending.get("version"):
        session.pop(PENDING, None)  # a password change or reset in between voids the accepted password
        return None
    return user


def _back_to_login():
    flash("Sign in again: the time for the second step ran out.", "info")
    return redirect(url_for("auth.login"))


def end_stale_session():
    """Before every request: a signed-in session unused for SESSION_IDLE_MINUTES, one that did not come from this
    sign-in (a remember-me cookie from before), or one without the second factor its user's roles now require ends
    here and the browser goes to the login page."""
    if request.endpoint in (None, "static") or not current_user.is_authenticated:
        return None
    now, seen = time.time(), session.get("seen")
    idle = current_app.config["SESSION_IDLE_MINUTES"]
    if seen is None:
        reason = "Please sign in again."
    elif now - seen > idle * 60:
        reason = f"You were signed out after {idle} minutes without activity."
    elif current_user.needs_second_factor and not session.get("mfa"):
        reason = "Your role now requires two-step sign-in: sign in again to set it up."
    else:
        session["seen"] = int(now)
        return None
    logout_user()
    for key in ("seen", "mfa", PENDING):
        session.pop(key, None)
    flash(reason, "info")
    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    return go_to(target) if htmx else redirect(target)  # 302, as Flask-Login's own


# ------------------------------------------------------------------ signing in
@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if request.method == "GET" and request.args.get("email"):  # from an accepted invitation
        form.email.data = request.args["email"][:254]
    status = 200
    if form.validate_on_submit():
        result = authenticate(form.email.data, form.password.data)
        if result.user is not None and result.next_step is None:
            return redirect(_complete_sign_in(result.user, None))
        if result.user is not None:
            session[PENDING] = {"user": result.user.id, "version": result.user.session_version, "at": int(time.time()),
                                "step": result.next_step, "next": request.args.get("next")}
            return redirect(url_for("auth.second_factor" if result.next_step == "second_factor" else "auth.enrol"))
        flash(result.error, "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    user = _pending("second_factor")
    if user is None:
        return _back_to_login()
    form, error = CodeForm(), None
    if form.validate_on_submit():
        try:
            passed = check_second_factor(user, form.code.data)
        except AccountError as failure:
            error = str(failure)
        else:
            return redirect(_complete_sign_in(user, passed))
    elif request.method == "POST":
        error = "Enter the 6-digit code from your authenticator app, or a recovery code."
    return render_template("auth/second_factor.html", form=form, error=error), 401 if error else 200


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """An admin without a second factor sets one up before their sign-in completes."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    user = _pending("enrol")
    if user is None or user.has_second_factor:  # (enrolled meanwhile, in another tab: sign in with a code)
        session.pop(PENDING, None)
        return _back_to_login()
    start_enrolment(user)
    form, error = CodeForm(), None
    if form.validate_on_submit():
        try:
            codes = confirm_enrolment(user, form.code.data, Actor.for_user(user))
        except AccountError as failure:
            error = str(failure)
        else:
            target = _complete_sign_in(user, None, enrolled=True)
            return render_template("auth/recovery_codes.html", codes=codes, next=target)
    return render_template("auth/enrol.html", form=form, error=error, required=True, secret=user.totp_secret,
                           qr=qr_svg(provisioning_uri(user))), 422 if error else 200


@bp.post("/logout")
@login_required
def logout():
    log_out(current_user, Actor.for_user(current_user))
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


# ------------------------------------------------------------------ the user's own Security page
def _security_page(error: str | None = None, status: int = 200):
    user = current_user
    return render_template("auth/security.html", user=user, error=error, form=CodeForm(),
                           codes_left=recovery_codes_left(user) if user.has_second_factor else None), status


def _sign_in_again_here(user: User) -> None:
    """After the user ended their own sessions on purpose, this browser stays signed in (the new version)."""
    mfa = session.get("mfa")
    login_user(user, remember=False)
    session["seen"], session["mfa"] = int(time.time()), mfa


@bp.get("/account/security")
@login_required
def security():
    return _security_page()


@bp.route("/account/security/enrol", methods=["GET", "POST"])
@login_required
def security_enrol():
    user = current_user._get_current_object()
    try:
        start_enrolment(user)
    except AccountError as failure:
        return _security_page(str(failure), 409)
    form, error = CodeForm(), None
    if form.validate_on_submit():
        try:
            codes = confirm_enrolment(user, form.code.data, Actor.for_user(user))
        except AccountError as failure:
            error = str(failure)
        else:
            session["mfa"] = True
            return render_template("auth/recovery_codes.html", codes=codes, next=url_for("auth.security"))
    return render_template("auth/enrol.html", form=form, error=error, required=False, secret=user.totp_secret,
                           qr=qr_svg(provisioning_uri(user))), 422 if error else 200


@bp.post("/account/security/recovery-codes")
@login_required
def security_recovery_codes():
    user = current_user._get_current_object()
    try:
        check_current_password(user, request.form.get("password", ""))
        codes = regenerate_recovery_codes(user, Actor.for_user(user))
    except AccountError as failure:
        return _security_page(str(failure), 422)
    return render_template("auth/recovery_codes.html", codes=codes, next=url_for("auth.security"))


@bp.post("/account/security/disable")
@login_required
def security_disable():
    user = current_user._get_current_object()
    try:
        check_current_password(user, request.form.get("password", ""))
        disable_second_factor(user, Actor.for_user(user))
    except AccountError as failure:
        return _security_page(str(failure), 422)
    flash("Two-step sign-in is off.", "success")
    return redirect(url_for("auth.security"), 303)


@bp.post("/account/security/password")
@login_required
def security_password():
    user = current_user._get_current_object()
    try:
        change_own_password(user, request.form.get("password", ""), request.form.get("new_password", ""),
                            Actor.for_user(user), again=request.form.get("new_password_again", ""))
    except AccountError as failure:
        return _security_page(str(failure), 422)
    _sign_in_again_here(user)
    flash("Password changed. Every other session of yours has ended.", "success")
    return redirect(url_for("auth.security"), 303)


@bp.post("/account/security/sign-out-everywhere")
@login_required
def security_sign_out_everywhere():
    sign_out_everywhere(current_user, Actor.for_user(current_user))
    logout_user()
    flash("You are signed out everywhere, on this browser too.", "info")
    return redirect(url_for("auth.login"), 303)
