"""Settings > Tax codes (admins): the current legal entity's codes; add, retire, reactivate, delete unused."""
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.audit import Actor
from app.billing.vat import CATEGORIES
from app.errors import ValidationError
from app.extensions import db
from app.models import TaxCode
from app.records import taxcodes as service
from app.web.decorators import admin_required
from app.web.helpers import current_entity, form_locale, render
from app.web.settings import bp

FIELDS = ("code", "rate", "category", "reason", "reason_code", "note")


def _page(values: dict, errors: dict, status: int = 200):
    entity = current_entity()
    rows = service.entity_codes(entity) if entity else []
    in_use = {code.id: service.lines_using(code) for code in rows}
    response = render("settings/tax_codes.html", entity=entity, rows=rows, in_use=in_use, values=values,
                      errors=errors, categories=CATEGORIES)
    return response, status


@bp.get("/tax-codes")
@admin_required
def tax_codes():
    return _page({"category": "S"}, {})


@bp.post("/tax-codes")
@admin_required
def tax_code_add():
    entity = current_entity() or abort(404)
    values = {field: request.form.get(field, "") for field in FIELDS}
    try:
        code = service.add_code(entity, values, Actor.for_user(current_user), form_locale())
    except ValidationError as error:
        return _page(values, error.errors, 422)
    flash(f"Tax code {code.code} added to {entity.code}.", "success")
    return redirect(url_for("settings.tax_codes"))


def _own_code(code_id: int) -> TaxCode:
    code = db.session.get(TaxCode, code_id)
    entity = current_entity()
    if code is None or entity is None or code.legal_entity_id != entity.id:
        abort(404)
    return code


@bp.post("/tax-codes/<int:code_id>/retire", defaults={"action": "retire"})
@bp.post("/tax-codes/<int:code_id>/reactivate", defaults={"action": "reactivate"})
@bp.post("/tax-codes/<int:code_id>/delete", defaults={"action": "delete"})
@admin_required
def tax_code_action(code_id: int, action: str):
    code = _own_code(code_id)
    name = code.code
    act = {"retire": service.retire_code, "reactivate": service.reactivate_code, "delete": service.delete_code}[action]
    try:
        act(code, Actor.for_user(current_user))
    except ValidationError as error:
        flash("; ".join(error.errors.values()), "error")
    else:
        done = {"retire": "retired: no new line can use it", "reactivate": "can be used again",
                "delete": "deleted"}[action]
        flash(f"Tax code {name} {done}.", "success")
    return redirect(url_for("settings.tax_codes"))
