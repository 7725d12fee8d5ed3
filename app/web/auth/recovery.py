"""The public pages of account e-mails: asking for a password reset link, using it, and accepting an invitation.
The rules are app/password_reset.py's and app/invitations.py's. After either, the person signs in as always (with
the second factor their roles require): these pages never sign anyone in."""
from __future__ import annotations

from flask import after_this_request, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user

from app.errors import AccountError, InvitationLinkError, ResetLinkError
from app.invitations import accept_invitation, invitation_for_token
from app.invitations import lifetime as invitation_lifetime
from app.password_reset import (deliver_reset_mail, link_lifetime, request_password_reset,
                                reset_password, user_for_token)
from app.web.auth import bp
from app.web.auth.forms import ForgotPasswordForm


def _send_after_the_answer(message) -> None:
    """Send `message` once the response has gone out, so that whether there was one to send does not show in how
    long the answer took."""
    app = current_app._get_current_object()

    @after_this_request
    def send_later(response):
        def send():
            with app.app_context():
                deliver_reset_mail(message)

        response.call_on_close(send)
        return response


def _signed_out_of_other_accounts() -> None:
    if current_user.is_authenticated:  # a browser signed in (as anyone) signs in again, as the link's owner
        logout_user()


@bp.route("/login/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        message = request_password_reset(form.email.data)
        if message is not None:
            _send_after_the_answer(message)
        return redirect(url_for("auth.reset_requested"), 303)
    return render_template("auth/forgot_password.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/login/forgot/sent")
def reset_requested():
    return render_template("auth/reset_requested.html", lifetime=link_lifetime())


def _reset_link_refused(failure: Exception):
    return render_template("auth/link_refused.html", title="Password reset link", error=str(failure),
                           again=url_for("auth.forgot_password"), again_label="Ask for a new link"), 410


def _invitation_refused(failure: Exception):
    return render_template("auth/link_refused.html", title="Invitation", error=str(failure),
                           again=url_for("auth.login"), again_label="Go to the sign-in page"), 410


@bp.route("/login/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
def reset_password_page(token: str):
    error = None
    try:
        user = user_for_token(token)
    except ResetLinkError as failure:
        return _reset_link_refused(failure)
    if request.method == "POST":
        try:
            reset_password(token, request.form.get("new_password", ""), request.form.get("new_password_again", ""))
        except ResetLinkError as failure:  # used in another tab meanwhile
            return _reset_link_refused(failure)
        except AccountError as failure:
            error = str(failure)
        else:
            _signed_out_of_other_accounts()
            flash("Your new password is set, and every session of yours has ended. Sign in with it.", "success")
            return redirect(url_for("auth.login"), 303)
    return render_template("auth/reset_password.html", email=user.email, error=error), 422 if error else 200


@bp.route("/invitation/<token>", methods=["GET", "POST"], endpoint="accept_invitation")
def accept_invitation_page(token: str):
    error, name = None, request.form.get("name", "")
    try:
        _invitation, user = invitation_for_token(token)
    except InvitationLinkError as failure:
        return _invitation_refused(failure)
    if request.method == "POST":
        try:
            accept_invitation(token, name, request.form.get("new_password", ""),
                              request.form.get("new_password_again", ""))
        except InvitationLinkError as failure:
            return _invitation_refused(failure)
        except AccountError as failure:
            error = str(failure)
        else:
            _signed_out_of_other_accounts()
            then = " You will set up two-step sign-in next." if user.needs_second_factor else ""
            flash(f"Welcome to Arbill: your password is set. Sign in with it.{then}", "success")
            return redirect(url_for("auth.login", email=user.email), 303)
    return render_template("auth/accept_invitation.html", email=user.email, name=name, error=error,
                           lifetime=invitation_lifetime(), needs_second_factor=user.needs_second_factor), \
        422 if error else 200
