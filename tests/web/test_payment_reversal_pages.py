"""The invoice page's payments: each with its source and reference, reversed with a reason (HTMX or not),
struck through with the reversal under it; a payment dated after today is refused on its field; the invoice
shows `partially paid`, on its page, in the list (with its filter) and on the customer's page."""
import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models import Customer, Invoice, LegalEntity, Payment
from tests.web.test_invoice_money_pages import invoice_id  # noqa: F401 - the fixture


def pay(client, invoice_id, amount, received_on="2026-11-28", reference="stmt 7"):
    return client.post(f"/invoices/{invoice_id}/payments",
                       data={"amount": amount, "received_on": received_on, "reference": reference})


def payment_id(app, amount):
    with app.app_context():
        return db.session.scalar(select(Payment.id).where(Payment.amount == Decimal(amount)))


def test_a_partly_paid_invoice_shows_partially_paid_everywhere(app, client_as, invoice_id):  # noqa: F811
    client = client_as("accountant")
    assert pay(client, invoice_id, "20.00").status_code == 302
    detail = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert 'class="badge badge-partially-paid">partially paid</span>' in detail
    listing = client.get("/invoices?status=partially_paid").get_data(as_text=True)
    assert "DE01-2026-000001" in listing and "partially paid" in listing
    assert re.search(r'<option value="partially_paid"\s*>Partially paid</option>',
                     client.get("/invoices").get_data(as_text=True))
    assert "DE01-2026-000001" not in client.get("/invoices?status=issued").get_data(as_text=True)
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id))
    assert "badge-partially-paid" in client.get(f"/customers/{customer_id}").get_data(as_text=True)


def test_reverse_asks_for_a_reason_then_strikes_the_payment_through(app, client_as, invoice_id):  # noqa: F811
    client = client_as("accountant")
    pay(client, invoice_id, "58.53")
    paid_id = payment_id(app, "58.53")
    page = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert f'action="/invoices/{invoice_id}/payments/{paid_id}/reverse"' in page and "stmt 7" in page

    # HTMX without a reason: the payments section comes back with the error, nothing changed
    response = client.post(f"/invoices/{invoice_id}/payments/{paid_id}/reverse", data={"reason": " "},
                           headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith("<section") and "<html" not in body
    assert "say why the payment is reversed" in body
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "paid"

    response = client.post(f"/invoices/{invoice_id}/payments/{paid_id}/reverse",
                           data={"reason": "typed on the wrong invoice"}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/invoices/{invoice_id}"
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status, invoice.amount_due) == ("issued", Decimal("58.53"))
    page = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    rows = re.search(r'<table id="payments">.*?</table>', page, re.S).group(0)
    assert re.search(rf'<tr id="payment-{paid_id}" class="reversed">.*?<s>58,53', rows, re.S)
    assert rows.index(f'id="payment-{paid_id}"') < rows.index("reversal of #") < rows.index("typed on the wrong invoice")
    assert f"/payments/{paid_id}/reverse" not in page  # reversed once only
    assert "reversed: typed on the wrong invoice" in page  # the status history

    again = client.post(f"/invoices/{invoice_id}/payments/{paid_id}/reverse", data={"reason": "again"})
    assert again.status_code == 422 and "was reversed already" in again.get_data(as_text=True)


def test_only_accountants_reverse_and_a_payment_belongs_to_its_invoice(app, client_as, invoice_id):  # noqa: F811
    pay(client_as("accountant"), invoice_id, "10.00")
    paid_id = payment_id(app, "10.00")
    viewer = client_as("viewer")
    assert "Reverse" not in viewer.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert viewer.post(f"/invoices/{invoice_id}/payments/{paid_id}/reverse", data={"reason": "x"}).status_code == 403
    accountant = client_as("accountant")
    assert accountant.post(f"/invoices/{invoice_id + 1}/payments/{paid_id}/reverse",
                           data={"reason": "x"}).status_code == 404
    no_token = accountant.post(f"/invoices/{invoice_id}/payments/{paid_id}/reverse", data={"reason": "x"}, csrf=False)
    assert no_token.status_code == 400
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).amount_due == Decimal("48.53")


def test_a_payment_dated_after_today_is_refused_on_its_field(app, client_as, invoice_id):  # noqa: F811
    with app.app_context():
        tomorrow = db.session.scalar(select(LegalEntity)).today() + timedelta(days=1)
    response = pay(client_as("accountant"), invoice_id, "10.00", received_on=tomorrow.isoformat())
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<small class="error" id="error-payment_received_on">[^<]*is in the future', body)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).amount_due == Decimal("58.53")
