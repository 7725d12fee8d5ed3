"""Agents > Orchestration: which agent runs when an event happens."""
from flask import Blueprint

bp = Blueprint("orchestration", __name__, url_prefix="/agents/orchestration")

from app.web.orchestration import routes  # noqa: E402,F401
