"""Customer pages: list, search, pagination, detail, create and edit, per role; inline errors; escaping."""
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Customer, Invoice
from tests.factories import make_contract, make_entity
from tests.paging import count_text, page_link

ROLES = ("viewer", "accountant", "admin")
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def run_inline(entity, as_of):
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    execute_run(result.run.id, inline=True)


@pytest.fixture
def world(app):
    """DE01 with Bolt (a contract, billed) and Starship Technologies."""
    with app.app_context():
        entity = make_entity()
        start = date.today().replace(day=1)
        bolt = make_contract(entity, "C-1", start=start, customer="Bolt")
        make_contract(entity, "C-2", start=start + timedelta(days=400), customer="Starship Technologies")
        db.session.commit()
        run_inline(entity, start)
        return {"entity": entity.id, "bolt": bolt.customer_id}


def count_customers(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Customer))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_list_and_the_detail(client_as, world, role):
    client = client_as(role)
    page = client.get("/customers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Bolt" in html and "Starship Technologies" in html
    assert ("New customer" in html) == (role != "viewer")
    detail = client.get(f"/customers/{world['bolt']}").get_data(as_text=True)
    assert "C-1" in detail and "DE01-" in detail  # its contract and its invoice
    assert ("/edit" in detail) == (role != "viewer")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_per_role(client_as, world, role):
    client = client_as(role)
    for url in ("/customers", f"/customers/{world['bolt']}", "/customers?q=bolt&page=1"):
        assert client.get(url).status_code == 200, url
    for url in ("/customers/new", f"/customers/{world['bolt']}/edit"):
        assert client.get(url).status_code == (403 if role == "viewer" else 200), url


def test_unknown_customer_is_404(client_as, world):
    assert client_as("viewer").get("/customers/9999").status_code == 404


def test_search_as_plain_get_and_as_htmx_partial(client_as, world):
    client = client_as("viewer")
    full = client.get("/customers?q=bol")
    html = full.get_data(as_text=True)
    assert "<html" in html and 'hx-trigger="input changed delay:300ms' in html
    assert "Bolt" in html and "Starship" not in html
    assert "HX-Request" in full.headers["Vary"]
    partial = client.get("/customers?q=STARSHIP", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert "<html" not in body and "Starship Technologies" in body and "Bolt" not in body
    assert "HX-Request" in partial.headers["Vary"]
    # E-mail addresses are searched too; LIKE wildcards are taken literally.
    assert "Bolt" in client.get("/customers?q=c-1@example").get_data(as_text=True)
    assert "No customer matches" in client.get("/customers?q=%25").get_data(as_text=True)


def test_pagination(app, client_as, world):
    with app.app_context():
        for n in range(30):
            db.session.add(Customer(legal_entity_id=world["entity"], name=f"Zeta {n:02d}"))
        db.session.commit()
    client = client_as("viewer")
    first = client.get("/customers").get_data(as_text=True)
    assert count_text(first) == "32 in all" and "Zeta 22" in first and "Zeta 23" not in first
    second = client.get(page_link(first, "next")).get_data(as_text=True)
    assert "Zeta 23" in second and "Zeta 29" in second and "Bolt" not in second


def test_empty_state_says_what_to_do(app, client_as):
    with app.app_context():
        make_entity()
        db.session.commit()
    assert "No customers yet — import a contracts CSV or create one." in client_as("accountant").get("/customers").get_data(as_text=True)


def test_viewer_cannot_create_or_edit(client_as, world, app):
    viewer = client_as("viewer")
    assert viewer.get("/customers/new").status_code == 403
    assert viewer.post("/customers/new", data={"name": "Nope"}).status_code == 403
    assert viewer.get(f"/customers/{world['bolt']}/edit").status_code == 403
    assert viewer.post(f"/customers/{world['bolt']}/edit", data={"name": "Nope"}).status_code == 403
    assert count_customers(app) == 2


@pytest.mark.parametrize("role", ["accountant", "admin"])
def test_create_customer(app, client_as, world, role):
    client = client_as(role)
    assert client.get("/customers/new").status_code == 200
    response = client.post("/customers/new", data={
        "name": "Acme GmbH", "email": "ap@acme.example", "vat_id": "DE136695976", "payment_method": "sepa_debit",
        "iban": "DE89 3704 0044 0532 0130 00", "mandate_reference": "M-1", "mandate_date": "2026-01-15"})
    assert response.status_code == 302
    with app.app_context():
        acme = db.session.scalar(select(Customer).where(Customer.name == "Acme GmbH"))
        assert acme.iban == "DE89370400440532013000" and acme.payment_method == "sepa_debit"
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.created"))
        assert entry.actor_label == f"{role}@example.com"
    assert response.headers["Location"] == f"/customers/{acme.id}"
    assert "Customer Acme GmbH created." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_invalid_form_rerenders_with_inline_errors_and_422(app, client_as, world):
    client = client_as("accountant")
    response = client.post("/customers/new", data={
        "name": "Bolt", "email": "nope", "payment_method": "sepa_debit", "iban": "DE89370400440532013001",
        "mandate_reference": "", "mandate_date": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing was saved" in html
    assert 'id="error-name">a customer named Bolt already exists in DE01<' in html
    assert "&#39;nope&#39; is not an e-mail address" in html
    assert "IBAN DE89370400440532013001 has an invalid checksum" in html
    assert "mandate reference (needed for sepa_debit) is required" in html
    assert "mandate date (needed for sepa_debit) is required" in html
    assert 'value="DE89370400440532013001"' in html  # what was typed stays in the form
    assert count_customers(app) == 2


def test_edit_customer(app, client_as, world):
    client = client_as("accountant")
    form = client.get(f"/customers/{world['bolt']}/edit").get_data(as_text=True)
    assert 'value="Bolt"' in form
    bad = client.post(f"/customers/{world['bolt']}/edit", data={"name": "Starship Technologies"})
    assert bad.status_code == 422 and "already exists" in bad.get_data(as_text=True)
    good = client.post(f"/customers/{world['bolt']}/edit", data={"name": "Bolt Technology OÜ", "email": "ap@bolt.eu",
                                                                  "payment_method": "manual"})
    assert good.status_code == 302
    with app.app_context():
        bolt = db.session.get(Customer, world["bolt"])
        assert (bolt.name, bolt.email) == ("Bolt Technology OÜ", "ap@bolt.eu")
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.updated"))
        assert entry.details["changes"]["name"] == ["Bolt", "Bolt Technology OÜ"]


def test_post_without_csrf_token_is_refused(app, client_as, world):
    response = client_as("accountant").post("/customers/new", data={"name": "Acme"}, csrf=False)
    assert response.status_code == 400
    assert count_customers(app) == 2


def test_script_in_a_customer_name_is_escaped_everywhere(app, client_as):
    with app.app_context():
        entity = make_entity()
        contract = make_contract(entity, "X-1", start=date.today().replace(day=1), customer=XSS)
        db.session.commit()
        run_inline(entity, date.today().replace(day=1))
        ids = {"customer": contract.customer_id, "contract": contract.id}
        invoice_id = db.session.scalar(select(Invoice.id))
    client = client_as("admin")
    for url in ("/customers", f"/customers/{ids['customer']}", f"/customers/{ids['customer']}/edit", "/contracts",
                f"/contracts/{ids['contract']}", f"/contracts/{ids['contract']}/edit", "/invoices",
                f"/invoices/{invoice_id}", f"/invoices?customer={ids['customer']}"):
        html = client.get(url).get_data(as_text=True)
        assert XSS not in html, url
        assert XSS_ESCAPED in html, url
    partial = client.get("/customers?q=script", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert XSS not in partial and XSS_ESCAPED in partial
    invalid = client.post("/customers/new", data={"name": XSS, "email": XSS}).get_data(as_text=True)
    assert XSS not in invalid and XSS_ESCAPED in invalid


@pytest.mark.parametrize("field, value, message", [
    ("name", "Bolt\r\nBcc: all@example.com", "customer name contains a line break (CR) at character 5; it must be one "
                                             "line of plain text"),
    ("name", "Bolt\tOÜ", "customer name contains a tab at character 5"),
    ("name", "Bolt\x1b[2J", "customer name contains the control character U+001B at character 5"),
    ("name", "Bolt\x85OÜ", "customer name contains a line break (NEL, U+0085) at character 5"),
    ("name", "Bolt\u2028OÜ", "customer name contains a line separator (U+2028) at character 5"),
    ("name", "B" * 201, "customer name is 201 characters long; at most 200 fit"),
    ("email", "ap\x01@bolt.example", "e-mail address contains the control character U+0001 at character 3"),
    ("address_line1", "Ahtri 12\x07", "address line 1 contains the control character U+0007 at character 9; it "
                                       "must be one line of plain text"),
    ("postcode", "101\x1b51", "postcode contains the control character U+001B at character 4"),
    ("country", "XX", "'XX' is not an ISO 3166 country code"),
    ("vat_id", "DE136695977", "'DE136695977' is not a valid Germany VAT ID: its check digit does not match"),
    ("vat_id", "T5835678256246", "is a Japanese registration number, not a VAT ID"),
    ("buyer_reference", "04011000\n1", "buyer reference contains a line break (LF) at character 9"),
    ("mandate_reference", "M-1\n2", "mandate reference contains a line break (LF) at character 4"),
])
def test_one_line_fields_refuse_control_characters(app, client_as, world, field, value, message):
    data = {"name": "Acme GmbH", "payment_method": "manual", field: value}
    for url in ("/customers/new", f"/customers/{world['bolt']}/edit"):
        response = client_as("accountant").post(url, data=data)
        assert response.status_code == 422, url
        assert message in response.get_data(as_text=True).replace("&#39;", "'"), url
    assert count_customers(app) == 2
    with app.app_context():
        assert db.session.get(Customer, world["bolt"]).name == "Bolt"


def test_the_billing_address_is_structured_and_shown_as_a_letter_would(app, client_as, world):
    client = client_as("accountant")
    response = client.post(f"/customers/{world['bolt']}/edit", data={
        "name": "Bolt", "payment_method": "manual", "email": "ap@bolt.example", "address_line1": "Vana-Lõuna 15",
        "postcode": "10134", "city": "Tallinn", "country": "ee", "vat_id": "EE 102 090 374",
        "buyer_reference": "BOLT-AP-7"})
    assert response.status_code == 302
    with app.app_context():
        bolt = db.session.get(Customer, world["bolt"])
        assert (bolt.address_line1, bolt.postcode, bolt.city, bolt.country, bolt.vat_id, bolt.buyer_reference) == (
            "Vana-Lõuna 15", "10134", "Tallinn", "EE", "EE102090374", "BOLT-AP-7")
    page = client.get(f"/customers/{world['bolt']}").get_data(as_text=True)
    assert "Vana-Lõuna 15\n10134 Tallinn\nEstonia" in page and "BOLT-AP-7" in page
    # Part of an address is not an address: each missing part is named, and nothing changes.
    response = client.post(f"/customers/{world['bolt']}/edit", data={
        "name": "Bolt", "payment_method": "manual", "postcode": "10134"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field in ("address line 1", "city", "country"):
        assert f"{field} is required for a postal address (given: postcode)" in html
    with app.app_context():
        assert db.session.get(Customer, world["bolt"]).city == "Tallinn"



def test_a_mandate_signed_in_the_future_is_refused(app, client_as, world):
    client = client_as("accountant")
    response = client.post("/customers/new", data={
        "name": "Future GmbH", "email": "ap@future.example", "payment_method": "sepa_debit",
        "iban": "DE89 3704 0044 0532 0130 00", "mandate_reference": "M-9", "mandate_date": "2031-01-15"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "15.01.2031 is after today" in html  # in the entity's locale (de_DE) and "the date the customer signed the mandate" in html
    assert count_customers(app) == 2  # nothing saved
