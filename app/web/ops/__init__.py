"""Operations: /healthz for load balancers and monitors, and the RQ dashboard at /rq (admins)."""
from flask import Blueprint

bp = Blueprint("ops", __name__)

from app.web.ops import routes  # noqa: E402,F401
