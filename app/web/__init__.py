"""The web app: blueprints as packages, one per area of the admin."""
from __future__ import annotations

from flask import Flask, current_app, render_template

from app.extensions import db, login_manager


def register_blueprints(app: Flask) -> None:
    from app.web import input

    input.init_app(app)  # the URL converters first: routes bind them when they are added

    from app.web.agents import bp as agents_bp
    from app.web.auth import bp as auth_bp
    from app.web.collections import bp as collections_bp
    from app.web.dunning import bp as dunning_bp
    from app.web.mailbox import bp as mailbox_bp
    from app.web.main import bp as main_bp
    from app.web.ops import bp as ops_bp
    from app.web.ops.rq import mount_rq_dashboard
    from app.web.orchestration import bp as orchestration_bp
    from app.web.records import bp as records_bp
    from app.web.reports import bp as reports_bp
    from app.web.runs import bp as runs_bp
    from app.web.schedules import bp as schedules_bp
    from app.web.settings import bp as settings_bp

    for blueprint in (auth_bp, main_bp, agents_bp, schedules_bp, orchestration_bp, runs_bp, reports_bp, records_bp,
                      collections_bp, dunning_bp, settings_bp, mailbox_bp, ops_bp):
        app.register_blueprint(blueprint)
    mount_rq_dashboard(app)

    from app.web import helpers, security

    helpers.init_app(app)
    security.init_app(app)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(session_id: str):
        from app.accounts import load_session_user

        return load_session_user(session_id)

    @app.errorhandler(403)
    def forbidden(_error):
        return render_template("errors/403.html"), 403

    @app.errorhandler(404)
    def not_found(_error):
        return render_template("errors/404.html"), 404

    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import BadRequest

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("errors/400.html", reason=error.description), 400

    @app.errorhandler(BadRequest)
    def bad_request(error):
        custom = error.description != BadRequest.description
        return render_template("errors/400.html", reason=error.description if custom else None), 400

    @app.errorhandler(413)
    def too_large(_error):
        from flask import request

        found = input.upload_limit_of(request.endpoint)
        setting, size, advice = found or ("MAX_CONTENT_LENGTH", current_app.config.get("MAX_CONTENT_LENGTH"), None)
        return render_template("errors/413.html", limit=size_in_words(size), setting=setting, advice=advice), 413


def size_in_words(size: int | None) -> str:
    """8388608 → "8 MB" (MiB, as a person reads a file size); None → "limit"."""
    if not size:
        return "limit"
    for unit, factor in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"
