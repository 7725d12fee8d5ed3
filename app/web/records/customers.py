"""Customer pages: list with search, detail, create and edit."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user

from app.audit import Actor
from app.dunning.service import notices_of_customer
from app.errors import ValidationError
from app.models import Customer
from app.models.parties import PAYMENT_METHODS
from app.records import customers as service
from app.records.invoices import is_overdue
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, form_locale, keyset_page, render
from app.web.input import arg_search
from app.web.records import bp


def form_data() -> dict[str, str]:
    return {field: request.form.get(field, "") for field in service.FIELDS}


def get_customer(customer_id: int) -> Customer:
    return entity_record_or_404(Customer, customer_id)


def unprocessable(response):
    response.status_code = 422
    return response


@bp.get("/customers")
@role_required("viewer")
def customers():
    entity = current_entity()
    search = arg_search()
    listing = keyset_page(service.customer_query(entity, search), service.CUSTOMER_ORDER) if entity else None
    return render("records/customers.html", "records/_customers_table.html", entity=entity, listing=listing, q=search)


@bp.route("/customers/new", methods=["GET", "POST"])
@role_required("accountant")
def customer_new():
    entity = current_entity()
    if entity is None:
        flash("Add a legal entity first: customers belong to one.", "error")
        return redirect(url_for("records.customers"))
    data, errors = {"payment_method": "manual"}, {}
    if request.method == "POST":
        data = form_data()
        try:
            customer = service.create_customer(entity, data, Actor.for_user(current_user), form_locale())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Customer {customer.name} created.", "success")
            return redirect(url_for("records.customer_detail", customer_id=customer.id))
    response = render("records/customer_form.html", entity=entity, customer=None, data=data, errors=errors,
                      methods=PAYMENT_METHODS)
    return unprocessable(response) if errors else response


@bp.get("/customers/<int:customer_id>")
@role_required("viewer")
def customer_detail(customer_id: int):
    customer = get_customer(customer_id)
    return render("records/customer_detail.html", customer=customer, entity=customer.legal_entity,
                  contracts=service.customer_contracts(customer), invoices=service.customer_invoices(customer),
                  today=customer.legal_entity.today(), is_overdue=is_overdue,
                  reminders=notices_of_customer(customer.id))


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@role_required("accountant")
def customer_edit(customer_id: int):
    customer = get_customer(customer_id)
    data, errors = service.form_values(customer, form_locale()), {}
    if request.method == "POST":
        data = form_data()
        try:
            changes = service.update_customer(customer, data, Actor.for_user(current_user), form_locale())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Customer {customer.name} saved." if changes else "Nothing changed.", "success")
            return redirect(url_for("records.customer_detail", customer_id=customer.id))
    response = render("records/customer_form.html", entity=customer.legal_entity, customer=customer, data=data,
                      errors=errors, methods=PAYMENT_METHODS)
    return unprocessable(response) if errors else response
