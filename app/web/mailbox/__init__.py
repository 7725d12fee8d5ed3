"""Settings > Mailbox (development): what the local mail sink received, for admins."""
from flask import Blueprint

bp = Blueprint("mailbox", __name__, url_prefix="/mailbox")

from app.web.mailbox import routes  # noqa: E402,F401
