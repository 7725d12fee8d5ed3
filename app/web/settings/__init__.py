from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from app.web.settings import audit_trail, routes, taxcodes  # noqa: E402,F401
