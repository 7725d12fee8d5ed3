from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.accounts import authenticate, log_out
from app.audit import Actor, record
from app.extensions import db
from app.web.auth import bp
from app.web.auth.forms import LoginForm


def _safe_next(target: str | None) -> str:
    if target and urlsplit(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = authenticate(form.email.data, form.password.data)
        if result.user is not None:
            login_user(result.user, remember=form.remember.data)
            record("user.login", "user", result.user.id, Actor.for_user(result.user))
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        flash(result.error, "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    log_out(current_user, Actor.for_user(current_user))
    db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
