"""Collections > Batches: SEPA direct-debit batches, their pain.008 files and the bank's answers."""
from flask import Blueprint

bp = Blueprint("collections", __name__, url_prefix="/collections")

from app.web.collections import routes  # noqa: E402,F401
