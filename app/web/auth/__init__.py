from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.web.auth import recovery, routes  # noqa: E402,F401

bp.before_app_request(routes.end_stale_session)
