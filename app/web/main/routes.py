from urllib.parse import urlsplit

from flask import abort, redirect, request, url_for
from flask_login import current_user, login_required

from app import accounts
from app.audit import Actor
from app.errors import FieldError
from app.extensions import db
from app.models import LegalEntity
from app.records.validation import parse_id
from app.web.helpers import render
from app.web.decorators import role_required
from app.web.input import arg_search, bad_request
from app.web.main import bp


@bp.get("/")
@login_required
def home():
    from app.reports.dashboard import dashboard_figures
    from app.web.helpers import current_entity

    entity = current_entity()
    figures = dashboard_figures(entity) if entity else None
    return render("main/home.html", entity=entity, figures=figures)


@bp.post("/entity")
@login_required
def switch_entity():
    """Remember the user's legal entity, then go back where they were."""
    try:
        entity = db.session.get(LegalEntity, parse_id(request.form.get("entity"), "legal entity"))
    except FieldError as error:
        bad_request(f"legal entity: {error}.")
    if entity is None or not current_user.sees_entity(entity.id):  # not theirs: as if it did not exist
        abort(404)
    accounts.switch_entity(current_user, entity, Actor.for_user(current_user))
    target = request.form.get("next") or url_for("main.home")
    if urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        target = url_for("main.home")
    return redirect(target)


SEARCH_LINKS = {"invoice": ("records.invoice_detail", "invoice_id"), "customer": ("records.customer_detail", "customer_id"),
                "contract": ("records.contract_detail", "contract_id"), "bank_entry": ("records.bank_entry", "entry_id")}


@bp.get("/search")
@role_required("viewer")
def search():
    """The header's search box: invoice number, customer name or e-mail, contract reference, IBAN. One hit opens it."""
    from app.records.search import search as find

    results = find(arg_search(), current_user.visible_entity_ids())
    if len(results.hits) == 1 and not results.more:
        hit = results.hits[0]
        endpoint, param = SEARCH_LINKS[hit.kind]
        return redirect(url_for(endpoint, **{param: hit.id}))
    return render("main/search.html", results=results, links=SEARCH_LINKS)
