"""The RQ dashboard, mounted at /rq for admins, its actions covered by our CSRF protection."""
from __future__ import annotations

import rq_dashboard
from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from rq_dashboard.web import setup_rq_connection


def _admins_only():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path))
    if not current_user.can("admin"):
        abort(403)
    return None


def _send_csrf_token(response):
    """The dashboard's jQuery POSTs (delete, requeue, empty) carry our CSRF token as a header."""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        script = Markup('<script>window.jQuery && jQuery.ajaxSetup({headers: {"X-CSRFToken": "%s"}});</script>'
                        % generate_csrf())
        body = response.get_data(as_text=True)
        if "</body>" in body:
            response.set_data(body.replace("</body>", f"{script}</body>", 1))
    return response


def mount_rq_dashboard(app: Flask) -> None:
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    # On this app only (the blueprint object is shared): the role check runs before the dashboard's own hooks.
    name = rq_dashboard.blueprint.name
    app.before_request_funcs.setdefault(name, []).insert(0, _admins_only)
    app.after_request_funcs.setdefault(name, []).append(_send_csrf_token)
