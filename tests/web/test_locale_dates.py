"""Every date a person types is read in the legal entity's locale (31.03.2026 for de_DE) and as YYYY-MM-DD, by the
one parser (app/locale_input.py), shown back as the entity writes it, and refused with what to write instead; money
in an error reads as the entity writes it (58,53 €)."""
from datetime import date

from lxml import html
from sqlalchemy import select

from app.extensions import db
from app.models import BillingRun, Customer, Invoice, LegalEntity, SepaBatchItem
from tests.web.test_collections_pages import build_world, close
from tests.web.test_locale_forms import world_of

NBSP = "\u00a0"
HX = {"HX-Request": "true"}
REFUSED = "&#39;31.13.2026&#39; is not a date (use DD.MM.YYYY or YYYY-MM-DD)"


def field(page: str, name: str):
    return html.fromstring(page).xpath(f"//input[@name='{name}']")[0]


def customer_form(**values) -> dict:
    data = {"name": "Mandated GmbH", "email": "ap@mandated.example", "payment_method": "sepa_debit",
            "iban": "DE89 3704 0044 0532 0130 00", "mandate_reference": "M-1", "mandate_date": "31.03.2026"}
    data.update(values)
    return data


def mandate_dates(app) -> dict:
    with app.app_context():
        return {c.name: c.mandate_date for c in db.session.scalars(select(Customer).where(Customer.mandate_date.is_not(None)))}


# ------------------------------------------------------------------ the customer's mandate date
def test_a_german_mandate_date_reads_in_german_and_iso_and_shows_in_german(app, client_as):
    world_of(app, "de_DE")
    client = client_as("accountant")
    form = client.get("/customers/new").get_data(as_text=True)
    mandate = field(form, "mandate_date")
    assert (mandate.get("type"), mandate.get("placeholder")) == ("text", "DD.MM.YYYY")
    assert client.post("/customers/new", data=customer_form()).status_code == 302
    assert client.post("/customers/new", data=customer_form(name="Iso AG", mandate_date="2026-03-30")).status_code == 302
    assert mandate_dates(app) == {"Mandated GmbH": date(2026, 3, 31), "Iso AG": date(2026, 3, 30)}
    refused = client.post("/customers/new", data=customer_form(name="Bad AG", mandate_date="31.13.2026"))
    assert refused.status_code == 422 and REFUSED in refused.get_data(as_text=True)
    assert field(refused.get_data(as_text=True), "mandate_date").get("value") == "31.13.2026"  # as typed, to fix
    with app.app_context():
        mandated = db.session.scalar(select(Customer.id).where(Customer.name == "Mandated GmbH"))
    edit = client.get(f"/customers/{mandated}/edit").get_data(as_text=True)
    assert field(edit, "mandate_date").get("value") == "31.03.2026"


# ------------------------------------------------------------------ the invoice list's period filters
def test_the_invoice_lists_period_filters_read_german_and_iso(app, client_as):
    world_of(app, "de_DE")  # Bolt's invoice for the period from 1 November 2026
    client = client_as("viewer")
    with app.app_context():
        number = db.session.scalar(select(Invoice.number))
    german = client.get("/invoices?period_from=01.11.2026&period_to=30.11.2026").get_data(as_text=True)
    iso = client.get("/invoices?period_from=2026-11-01&period_to=2026-11-30").get_data(as_text=True)
    for page in (german, iso):
        assert number in page
        assert (field(page, "period_from").get("value"), field(page, "period_to").get("value")) == (
            "01.11.2026", "30.11.2026")
        assert field(page, "period_from").get("placeholder") == "DD.MM.YYYY"
    later = client.get("/invoices?period_from=02.11.2026").get_data(as_text=True)
    assert number not in later and "No invoice matches these filters" in later
    refused = client.get("/invoices?period_from=31.13.2026")
    assert refused.status_code == 400
    assert f"period from: {REFUSED} — this filter is ignored." in refused.get_data(as_text=True)
    export = client.get("/invoices.csv?period_from=01.11.2026")
    assert export.status_code == 200 and number in export.get_data(as_text=True)


# ------------------------------------------------------------------ the Run button's as-of date
def test_the_run_buttons_as_of_date_reads_german_and_iso(app, client_as):
    world_of(app, "de_DE")
    client = client_as("accountant")
    page = client.get("/agents/billing_run").get_data(as_text=True)
    as_of = field(page, "as_of")
    assert (as_of.get("type"), as_of.get("placeholder"), as_of.get("aria-describedby")) == (
        "text", "DD.MM.YYYY", "as-of-help")
    for typed in ("15.01.2026", "2026-01-16"):
        answer = client.post("/agents/billing_run/run", data={"as_of": typed, "dry_run": "on"}, headers=HX)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    refused = client.post("/agents/billing_run/run", data={"as_of": "31.13.2026", "dry_run": "on"})
    assert refused.status_code == 422
    assert f"As-of date: {REFUSED}." in refused.get_data(as_text=True)
    assert field(refused.get_data(as_text=True), "as_of").get("value") == "31.13.2026"
    with app.app_context():
        dry_runs = db.session.scalars(select(BillingRun.as_of).where(BillingRun.dry_run).order_by(BillingRun.id))
        assert list(dry_runs) == [date(2026, 1, 15), date(2026, 1, 16)]


# ------------------------------------------------------------------ a debit's outcome
def test_a_debits_collected_date_reads_german_and_iso(app, client_as, users):
    world = build_world(app)  # DE01: de_DE
    client = client_as("accountant")
    assert close(client, world).status_code == 303
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    shown = html.fromstring(page).xpath("//form[contains(@class, 'outcome-collected')]//input[@name='date']")[0]
    assert (shown.get("type"), shown.get("value"), shown.get("aria-label")) == (
        "text", world["today"].strftime("%d.%m.%Y"), "Collected on (DD.MM.YYYY)")
    url = f"/collections/batches/{world['batch']}/items/{{}}/outcome"
    first, second = world["items"]
    refused = client.post(url.format(first), data={"outcome": "collected", "date": "31.13.2026"})
    assert refused.status_code == 422 and REFUSED in refused.get_data(as_text=True)
    today = world["today"]
    assert client.post(url.format(first), data={"outcome": "collected",
                                                "date": today.strftime("%d.%m.%Y")}).status_code == 303
    assert client.post(url.format(second), data={"outcome": "returned", "date": today.isoformat(),
                                                 "reason": "AM04 insufficient funds"}).status_code == 303
    with app.app_context():
        assert [i.status for i in db.session.scalars(select(SepaBatchItem).order_by(SepaBatchItem.id))] == [
            "collected", "returned"]


# ------------------------------------------------------------------ money in an error
def test_a_credit_above_what_is_left_says_so_in_the_entitys_money(app, client_as):
    world = world_of(app, "de_DE")  # 49,00 € + 19,45 % = 58,53 €
    response = client_as("accountant").post(f"/invoices/{world['invoice']}/credit",
                                            data={"what": "amount", "amount": "58,54", "reason": "Too much"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"58,54{NBSP}€ is more than the 58,53{NBSP}€ left to credit on invoice" in page
    assert "EUR left" not in page and "58.53" not in page


# ------------------------------------------------------------------ a schedule's time of day
def test_the_schedule_form_asks_for_the_time_as_the_locale_writes_it(app, client_as):
    world_of(app, "de_DE")
    german = client_as("admin").get("/schedules/new").get_data(as_text=True)
    assert "HH:MM on a 24-hour clock, e.g. 06:00 or 18:30" in german and "PM" not in german
    with app.app_context():
        db.session.scalar(select(LegalEntity)).locale = "en_US"
        db.session.commit()
    american = client_as("admin").get("/schedules/new").get_data(as_text=True)
    assert "e.g. 6:00 AM or 6:30 PM (or 18:30)" in american
