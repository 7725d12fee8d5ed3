"""Agents > Scheduled Jobs: when agents fire for the current legal entity."""
from flask import Blueprint

bp = Blueprint("schedules", __name__, url_prefix="/schedules")

from app.web.schedules import routes  # noqa: E402,F401
