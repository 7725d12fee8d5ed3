"""Records: customers, contracts (with the CSV import), invoices and the bank (statements, unmatched queue)."""
from flask import Blueprint

bp = Blueprint("records", __name__)

from app.web.records import bank, bulk, contracts, customers, invoices  # noqa: E402,F401
