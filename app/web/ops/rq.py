"""The RQ dashboard, mounted at /rq for admins.

A job's description, arguments and error text can carry anyone's data (a customer's e-mail address
in an SMTP refusal), and the dashboard builds its pages from them in the browser. What protects it
(docs/operations.md, "Watching"):
- admins only;
- its templates that show job data are overridden by escaping copies (app/templates/rq_dashboard/);
- a Content-Security-Policy runs only the scripts this response named with its nonce, so markup that
  slips into a page cannot run a script on our origin;
- every action is a POST carrying our CSRF token (CSRFProtect checks every POST of the app);
- a job id that Redis does not know is a 404.
"""
from __future__ import annotations

import secrets

import rq_dashboard
from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import current_user
from rq.job import Job
from rq_dashboard.web import setup_rq_connection

# The dashboard's views that change something (its names for them).
ACTIONS = frozenset({"requeue_all", "requeue_job_view", "delete_job_view", "empty_queue", "compact_queue"})
# 'unsafe-eval': the dashboard compiles its own client-side templates with underscore's _.template
# (new Function). No data reaches it: job data is passed to the compiled templates as values.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'nonce-{nonce}' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _admins_only():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path))
    if not current_user.is_org_admin:
        abort(403)
    return None


def _actions_are_posts():
    """rq-dashboard's "requeue all" also answers a GET, which any page can make an admin's browser send."""
    if (request.endpoint or "").rpartition(".")[2] in ACTIONS and request.method != "POST":
        abort(405, valid_methods=["POST"])


def _unknown_instances_are_not_found():
    """The dashboard raises LookupError (a 500) for an instance number beyond its Redis URLs."""
    number = (request.view_args or {}).get("instance_number")
    if number is not None and number >= len(current_app.config["RQ_DASHBOARD_REDIS_URL"]):
        abort(404)


def _not_now(error):
    """What RQ or Redis refuse to do with a job or queue as it is now (requeue a job that is not failed,
    compact a queue that does not exist): 409 on the dashboard's pages, the usual 500 elsewhere."""
    from werkzeug.exceptions import Conflict, InternalServerError

    if request.blueprint != rq_dashboard.blueprint.name:
        return InternalServerError(original_exception=error)
    return Conflict("the job or queue is not in a state that allows this: reload the page")


def _unknown_jobs_are_not_found():
    job_id = (request.view_args or {}).get("job_id")
    if job_id is not None and not Job.exists(job_id, connection=current_app.redis_conn):
        abort(404)


def _new_csp_nonce() -> None:
    """A nonce per response: made by the request's first hook (`g` can outlive a request)."""
    g.csp_nonce = secrets.token_urlsafe(16)


def _csp_nonce() -> str:
    if "csp_nonce" not in g:  # the request was refused before the dashboard's hooks ran (CSRF)
        _new_csp_nonce()
    return g.csp_nonce


def _content_security_policy(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(nonce=_csp_nonce())
    return response


def mount_rq_dashboard(app: Flask) -> None:
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    # On this app only (the blueprint object is shared): the nonce and the role check come before the
    # dashboard's own hooks, the other checks after them (its hook picks the Redis connection they use).
    name = rq_dashboard.blueprint.name
    app.before_request_funcs.setdefault(name, [])[:0] = [_new_csp_nonce, _admins_only, _unknown_instances_are_not_found]
    app.before_request_funcs[name] += [_actions_are_posts, _unknown_jobs_are_not_found]
    app.after_request_funcs.setdefault(name, []).append(_content_security_policy)
    app.template_context_processors.setdefault(name, []).append(lambda: {"csp_nonce": _csp_nonce()})
    from redis.exceptions import ResponseError
    from rq.exceptions import InvalidJobOperation

    for refused in (ResponseError, InvalidJobOperation):
        app.register_error_handler(refused, _not_now)
