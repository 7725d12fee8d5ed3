"""Arbill: recurring billing for finance teams."""
from __future__ import annotations

from flask import Flask

from app.extensions import csrf, db, htmx, login_manager, migrate
from app.logs import configure_logging


def create_app(config: object | None = None) -> Flask:
    """Build the app: logging, extensions, blueprints and CLI. Does no I/O."""
    from config import config_from_env

    app = Flask(__name__, instance_relative_config=False)
    app.config.from_object(config if config is not None else config_from_env())
    configure_logging(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from app import models  # noqa: F401  (registers the tables on db.metadata)
    from app.chain import sealing  # noqa: F401  (seals chained records before each commit)
    from app.web import register_blueprints

    register_blueprints(app)

    from app.web.auth import limits

    limits.init_app(app)
    if app.config.get("PROXY_FIX_X_FOR"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_X_FOR"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    from app.cli import register_cli

    register_cli(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
