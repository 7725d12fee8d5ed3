"""Records: customers, contracts (with the CSV import) and invoices."""
from flask import Blueprint

bp = Blueprint("records", __name__)

from app.web.records import contracts, customers, invoices  # noqa: E402,F401
