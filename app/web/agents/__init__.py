"""Agents > Definitions: the agents, their configuration, the Run button and their run history."""
from flask import Blueprint

bp = Blueprint("agents", __name__, url_prefix="/agents")

from app.web.agents import making, routes, running  # noqa: E402,F401
