"""Runs > Billing: the billing runs of the current legal entity, a run's outcomes and its audit trail."""
from flask import Blueprint

bp = Blueprint("runs", __name__, url_prefix="/runs")

from app.web.runs import routes  # noqa: E402,F401
