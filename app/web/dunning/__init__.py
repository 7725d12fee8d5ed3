"""Dunning pages: the preview of who gets which reminder (/dunning), a reminder's PDF, and the hold and dispute
forms of the customer and invoice pages (app/dunning)."""
from flask import Blueprint

bp = Blueprint("dunning", __name__)

from app.web.dunning import routes  # noqa: E402,F401
