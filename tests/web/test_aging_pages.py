"""Reports > AR Aging in the browser's terms: the page, a customer's invoices (HTMX row or page), CSV."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from babel.numbers import parse_decimal
from lxml import html

from app.extensions import db
from app.models import Customer, LegalEntity
from tests.factories import make_entity
from tests.integration.test_aging import AS_OF, add_invoice

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def text(node) -> str:
    return " ".join(node.text_content().replace("\xa0", " ").split())


def shown_rows(page: str) -> list[list[str]]:
    """The report's table rows as the user reads them: [currency, customer, 5 buckets, total]."""
    tree = html.fromstring(page)
    rows = []
    for section in tree.xpath("//section[@class='aging-section']"):
        currency = section.get("id").removeprefix("aging-")
        for tr in section.xpath(".//tbody/tr[@class='aging-row'] | .//tfoot/tr"):
            rows.append([currency] + [text(cell) for cell in tr.xpath("./th | ./td")])
    return rows


def amount_shown(cell: str, locale: str = "de_DE") -> Decimal:
    if cell == "—":
        return Decimal("0")
    number = "".join(ch for ch in cell if ch.isdigit() or ch in ",.-")
    return parse_decimal(number, locale=locale, strict=True)


def customer_id(app, name: str) -> int:
    with app.app_context():
        return db.session.query(Customer.id).filter_by(name=name).scalar()


@pytest.fixture
def german(app):
    """DE01 (de_DE, Europe/Berlin) with invoices in every bucket as of AS_OF, in EUR and USD."""
    with app.app_context():
        entity = make_entity(locale="de_DE")
        add_invoice(entity, "Bolt", "58.53", days=-14)
        add_invoice(entity, "Bolt", "1234.50", days=31)
        add_invoice(entity, "Starship Technologies", "58.53", days=0)
        add_invoice(entity, "Starship Technologies", "10.00", days=95)
        add_invoice(entity, "Cargo", "99.99", days=1)
        add_invoice(entity, "Cargo", "0.01", days=61)
        add_invoice(entity, "Cargo", "20.00", days=12, status="paid")
        add_invoice(entity, "Atlas Inc", "500.00", days=30, currency="USD")
        db.session.commit()
    return "DE01"


# ------------------------------------------------------------------ who may see it
@pytest.mark.parametrize("role", ["viewer", "accountant", "admin"])
def test_every_role_sees_the_report(client_as, german, role):
    response = client_as(role).get(f"/reports/aging?as_of={AS_OF}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Bolt" in page and "Starship Technologies" in page and "Atlas Inc" in page
    assert 'href="/reports/aging"' in page  # the nav's Reports > AR Aging


@pytest.mark.parametrize("role", ["viewer", "accountant", "admin"])
def test_every_role_can_expand_a_customer_and_export(app, client_as, german, role):
    client = client_as(role)
    assert client.get(f"/reports/aging/customer/{customer_id(app, 'Bolt')}?as_of={AS_OF}").status_code == 200
    assert client.get(f"/reports/aging.csv?entity=DE01&as_of={AS_OF}").status_code == 200


# ------------------------------------------------------------------ the walkthrough's data
def test_demo_data_shows_bolt_and_starship_with_58_53_in_current(app, admin_client):
    from app.audit import Actor
    from app.billing.runs import execute_run, start_billing_run
    from app.demo import seed_demo

    with app.app_context():
        seed_demo(date.today())
        db.session.commit()
        entity = db.session.query(LegalEntity).filter_by(code="DE01").one()
        result = start_billing_run(entity, date.today(), "cli", Actor.system("test"), enqueue=False)
        execute_run(result.run.id, inline=True)
    page = admin_client.get("/reports/aging").get_data(as_text=True)
    rows = {r[1]: r for r in shown_rows(page)}
    assert rows["Bolt"][2] == "58,53 €" and rows["Starship Technologies"][2] == "58,53 €"  # Current
    assert rows["Bolt"][3:] == ["—", "—", "—", "—", "58,53 €"]
    assert rows["Total"][2] == "117,06 €" and rows["Total"][-1] == "117,06 €"


# ------------------------------------------------------------------ what the page shows
def test_page_shows_buckets_totals_and_currencies_apart(admin_client, german):
    page = admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    assert shown_rows(page) == [
        ["EUR", "Bolt", "58,53 €", "—", "1.234,50 €", "—", "—", "1.293,03 €"],
        ["EUR", "Cargo", "—", "99,99 €", "—", "0,01 €", "—", "100,00 €"],
        ["EUR", "Starship Technologies", "58,53 €", "—", "—", "—", "10,00 €", "68,53 €"],
        ["EUR", "Total", "117,06 €", "99,99 €", "1.234,50 €", "0,01 €", "10,00 €", "1.461,56 €"],
        ["USD", "Atlas Inc", "—", "500,00 $", "—", "—", "—", "500,00 $"],
        ["USD", "Total", "0,00 $", "500,00 $", "0,00 $", "0,00 $", "0,00 $", "500,00 $"],
    ]
    tree = html.fromstring(page)
    eur = tree.xpath("//section[@id='aging-EUR']")[0]
    figures = {node.get("data-figure"): text(node) for node in eur.xpath(".//*[@data-figure]")}
    # 1,461.56 open, 117.06 current: 92.0 % overdue; 31+ days: 1,234.50 + 0.01 + 10.00 = 85.1 %.
    assert figures["total-open"] == "1.461,56 €"
    assert figures["overdue-share"] == "92 %"
    assert figures["over-30-share"] == "85,1 %"
    assert figures["top-share"] == "100 %"
    assert figures["dso"].endswith("days")
    assert "credit sales" in eur.xpath(".//abbr")[0].get("title")


def test_bar_chart_is_inline_accessible_svg(admin_client, german):
    tree = html.fromstring(admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True))
    svg = tree.xpath("//section[@id='aging-EUR']//svg")[0]
    assert svg.get("role") == "img" and svg.get("aria-labelledby")
    assert "Open receivables in EUR" in text(svg.xpath("./title")[0])
    desc = text(svg.xpath("./desc")[0])
    assert "Current: 117,06 €" in desc and "90+: 10,00 €" in desc
    labels = [text(t) for t in svg.xpath(".//text")]
    assert "1.234,50 €" in labels and "31-60" in labels
    heights = {g.get("data-bucket"): int(g.xpath("./rect")[0].get("height")) for g in svg.xpath(".//g[@class='bar']")}
    assert heights["d31_60"] > heights["current"] > heights["d90_plus"] > 0
    assert not tree.xpath("//script[starts-with(@src, 'http')]")  # no CDN


def test_rows_expand_with_htmx_under_the_row(app, admin_client, german):
    bolt = customer_id(app, "Bolt")
    tree = html.fromstring(admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True))
    link = next(a for a in tree.xpath("//tr[@class='aging-row']//a") if text(a) == "Bolt")
    url = f"/reports/aging/customer/{bolt}?as_of={AS_OF}&currency=EUR"
    assert link.get("hx-get") == url and link.get("href") == url
    row = link.getparent().getparent()
    assert row.getparent().get("hx-target") == "next tr" and row.getparent().get("hx-swap") == "outerHTML"
    placeholder = row.getnext()  # the hidden row right under the customer's row is what gets replaced
    assert placeholder.tag == "tr" and placeholder.get("hidden") is not None
    target = f"#aging-detail-EUR-{bolt}"
    assert placeholder.get("id") == target[1:]
    response = admin_client.get(url, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert "<html" not in body and body.lstrip().startswith(f'<tr id="{target[1:]}"')  # replaces the placeholder
    rows = [[text(td) for td in tr.xpath("./td")] for tr in html.fromstring(f"<table>{body}</table>").xpath(
        "//table[@class='aging-invoices']/tbody/tr")]
    assert [r[1:] for r in rows] == [
        [str(AS_OF - timedelta(days=45)), str(AS_OF - timedelta(days=31)), "31", "31-60", "1.234,50 €"],
        [str(AS_OF - timedelta(days=14)), str(AS_OF + timedelta(days=14)), "—", "Current", "58,53 €"],
    ]
    assert all(r[0].startswith("DE01-T-") for r in rows)


def test_customer_invoices_are_a_full_page_without_htmx(app, admin_client, german):
    response = admin_client.get(f"/reports/aging/customer/{customer_id(app, 'Cargo')}?as_of={AS_OF}")
    body = response.get_data(as_text=True).replace("\xa0", " ")
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert "<html" in body and "<h1>Cargo</h1>" in body and "99,99 €" in body and "0,01 €" in body
    assert "20,00" not in body  # the paid invoice
    assert f'href="/reports/aging?entity=DE01&amp;as_of={AS_OF}"' in body


def test_invoice_numbers_link_to_the_invoice_page(app, admin_client, german):
    from flask import url_for

    from app.models import Invoice

    cargo = customer_id(app, "Cargo")
    with app.app_context():
        open_ids = [i for (i,) in db.session.query(Invoice.id).filter_by(customer_id=cargo, status="issued")]
    with app.test_request_context():
        expected = sorted(url_for("records.invoice_detail", invoice_id=i) for i in open_ids)
    body = admin_client.get(f"/reports/aging/customer/{cargo}?as_of={AS_OF}").get_data(as_text=True)
    links = html.fromstring(body).xpath("//table[@class='aging-invoices']/tbody/tr/td[1]/a/@href")
    assert sorted(links) == expected and len(links) == 2


def test_unknown_customer_is_404(admin_client, german):
    assert admin_client.get("/reports/aging/customer/999999").status_code == 404


# ------------------------------------------------------------------ CSV
def test_csv_is_exactly_what_the_page_shows(admin_client, german):
    page = admin_client.get(f"/reports/aging?entity=DE01&as_of={AS_OF}").get_data(as_text=True)
    response = admin_client.get(f"/reports/aging.csv?entity=DE01&as_of={AS_OF}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="ar-aging-DE01-2026-11-26.csv"'
    exported = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert exported[0] == ["Currency", "Customer", "Current", "1-30", "31-60", "61-90", "90+", "Total"]
    shown = [[r[0], r[1], *(amount_shown(c) for c in r[2:])] for r in shown_rows(page)]
    assert [[r[0], r[1], *(Decimal(c) for c in r[2:])] for r in exported[1:]] == shown
    assert exported[1] == ["EUR", "Bolt", "58.53", "0.00", "1234.50", "0.00", "0.00", "1293.03"]
    assert 'href="/reports/aging.csv?entity=DE01&amp;as_of=2026-11-26"' in page


def test_csv_of_an_unknown_entity_or_bad_date_is_refused(admin_client, german):
    assert admin_client.get("/reports/aging.csv?entity=XX99").status_code == 404
    response = admin_client.get("/reports/aging.csv?entity=DE01&as_of=yesterday")
    assert response.status_code == 400 and b"YYYY-MM-DD" in response.data


# ------------------------------------------------------------------ inputs
def test_entity_input_defaults_to_the_current_entity_and_picks_another(app, admin_client, german):
    with app.app_context():
        other = make_entity("FR01", name="Paris SAS", locale="fr_FR", timezone="Europe/Paris")
        add_invoice(other, "Gustave", "12.00", days=3)
        db.session.commit()
        other_id = other.id
    page = admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    assert "Bolt" in page and "Gustave" not in page  # DE01 comes first
    picked = admin_client.get(f"/reports/aging?entity=FR01&as_of={AS_OF}").get_data(as_text=True)
    assert "Gustave" in picked and "Bolt" not in picked
    assert [o.get("value") for o in html.fromstring(picked).xpath(
        "//form[@id='aging-filters']//select[@name='entity']/option[@selected]")] == [
        "FR01"]
    admin_client.post("/entity", data={"entity": other_id, "next": "/"})  # the user's current entity
    assert "Gustave" in admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    response = admin_client.get("/reports/aging?entity=NOPE")
    assert response.status_code == 404 and "NOPE" in response.get_data(as_text=True)


def test_as_of_input_moves_invoices_between_buckets(admin_client, german):
    later = AS_OF + timedelta(days=30)
    rows = {r[1]: r for r in shown_rows(admin_client.get(f"/reports/aging?as_of={later}").get_data(as_text=True))}
    assert rows["Bolt"][2:] == ["—", "58,53 €", "—", "1.234,50 €", "—", "1.293,03 €"]  # 16 and 61 days past due
    earlier = AS_OF - timedelta(days=60)  # before most invoices were issued
    rows = {r[1]: r for r in shown_rows(admin_client.get(f"/reports/aging?as_of={earlier}").get_data(as_text=True))}
    assert "Bolt" not in rows and rows["Starship Technologies"][-1] == "10,00 €"


def test_as_of_defaults_to_today_in_the_entitys_time_zone(app, admin_client, german):

    with app.app_context():
        today = db.session.query(LegalEntity).filter_by(code="DE01").one().today()
    tree = html.fromstring(admin_client.get("/reports/aging").get_data(as_text=True))
    field = tree.xpath("//input[@name='as_of']")[0]  # in the entity's locale (de_DE), typed as text
    assert (field.get("value"), field.get("type"), field.get("placeholder")) == (
        today.strftime("%d.%m.%Y"), "text", "DD.MM.YYYY")


def test_a_bad_as_of_date_says_how_to_write_it(admin_client, german):
    response = admin_client.get("/reports/aging?as_of=31.13.2026")
    assert response.status_code == 400
    assert ("As-of date: &#39;31.13.2026&#39; is not a date (use DD.MM.YYYY or YYYY-MM-DD)."
            in response.get_data(as_text=True))
    shown = html.fromstring(response.get_data(as_text=True)).xpath("//input[@name='as_of']")[0]
    assert (shown.get("value"), shown.get("aria-invalid")) == ("31.13.2026", "true")  # as typed, to correct
    htmx = admin_client.get("/reports/aging?as_of=31.13.2026", headers=HX)  # HTMX swaps only 2xx answers
    assert htmx.status_code == 200 and "DD.MM.YYYY or YYYY-MM-DD" in htmx.get_data(as_text=True)


def test_the_as_of_date_is_read_in_the_entitys_locale_and_as_iso(admin_client, german):
    german_order = admin_client.get("/reports/aging?as_of=26.11.2026")
    iso = admin_client.get(f"/reports/aging?as_of={AS_OF.isoformat()}")
    assert german_order.status_code == iso.status_code == 200
    assert shown_rows(german_order.get_data(as_text=True)) == shown_rows(iso.get_data(as_text=True))
    for response in (german_order, iso):  # shown back as the entity writes it; the CSV link keeps ISO
        page = response.get_data(as_text=True)
        assert html.fromstring(page).xpath("//input[@name='as_of']")[0].get("value") == "26.11.2026"
        assert "as_of=2026-11-26" in page


def test_filter_form_swaps_only_the_report_with_htmx(admin_client, german):
    page = admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    form = html.fromstring(page).xpath("//form[@id='aging-filters']")[0]
    assert form.get("hx-get") == "/reports/aging" and form.get("hx-target") == "#aging-report"
    assert form.get("hx-push-url") == "true" and form.get("method") == "get"
    response = admin_client.get(f"/reports/aging?entity=DE01&as_of={AS_OF}", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert "<html" not in body and 'id="aging-EUR"' in body and "Bolt" in body


# ------------------------------------------------------------------ escaping and empty states
def test_customer_names_are_escaped_in_page_partial_and_csv(app, admin_client):
    with app.app_context():
        entity = make_entity()
        add_invoice(entity, XSS, "5.00", days=3)
        db.session.commit()
    cid = customer_id(app, XSS)
    for body in (admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True),
                 admin_client.get(f"/reports/aging/customer/{cid}?as_of={AS_OF}").get_data(as_text=True),
                 admin_client.get(f"/reports/aging/customer/{cid}?as_of={AS_OF}", headers=HX).get_data(as_text=True)):
        assert XSS not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(
        as_text=True)
    assert "&lt;script&gt;" in admin_client.get(f"/reports/aging/customer/{cid}?as_of={AS_OF}").get_data(as_text=True)


def test_empty_state_says_what_to_do(app, admin_client):
    with app.app_context():
        make_entity()
        db.session.commit()
    page = admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    assert "No open invoices for DE01 as of 2026-11-26 — run billing from Agents &gt; Definitions." in page
    assert "<table" not in page


def test_without_a_legal_entity_the_page_says_how_to_add_one(admin_client):
    page = admin_client.get("/reports/aging").get_data(as_text=True)
    assert "No legal entity yet" in page


# ------------------------------------------------------------------ the table's money formatter
def test_fast_money_is_exactly_babels_money_in_every_locale():
    """The report formats thousands of cells with fast_money; it must print what `helpers.money` prints."""
    import random

    from babel import localedata
    from babel.numbers import format_currency

    from app.formatting import fast_money

    rng = random.Random(20261126)
    amounts = [Decimal("0"), Decimal("0.5"), Decimal("58.53"), Decimal("1234.5"), Decimal("1000000"),
               Decimal("-12.34"), Decimal("99999999999999.9999")]
    for locale in localedata.locale_identifiers():
        for currency in ("EUR", "USD", "JPY", "BHD", "CHF", "INR"):
            for amount in amounts + [Decimal(rng.randrange(10 ** rng.randint(1, 14))).scaleb(-rng.choice([0, 2, 4]))]:
                assert fast_money(amount, currency, locale) == format_currency(amount, currency, locale=locale), (
                    locale, currency, amount)


# ------------------------------------------------------------------ many customers: slices and search
def test_customers_come_in_slices_largest_overdue_first_and_can_be_searched(app, admin_client):
    with app.app_context():
        entity = make_entity(locale="de_DE")
        for n in range(52):
            add_invoice(entity, f"Kunde {n:02d}", f"{n + 1}.00", days=40)
        add_invoice(entity, "Zeppelin", "900.00", days=-3)  # the largest total, nothing overdue: last
        db.session.commit()
    page = admin_client.get(f"/reports/aging?as_of={AS_OF}").get_data(as_text=True)
    rows = shown_rows(page)
    assert [r[1] for r in rows[:3]] == ["Kunde 51", "Kunde 50", "Kunde 49"] and len(rows) == 50 + 1  # + totals
    assert rows[-1][-1] == "2.278,00 €"  # every customer's total: 1 + … + 52 + 900
    more = html.fromstring(page).xpath("//tr[@class='aging-more']//a")[0]
    url = more.get("hx-get")
    assert url == more.get("href") == "/reports/aging/rows?entity=DE01&as_of=2026-11-26&currency=EUR&offset=50"
    assert "53 customer(s)" in text(html.fromstring(page).xpath("//caption")[0])

    rest = admin_client.get(url, headers=HX).get_data(as_text=True)
    names = [text(a) for a in html.fromstring(f"<table>{rest}</table>").xpath("//tr[@class='aging-row']/th/a")]
    assert names == ["Kunde 01", "Kunde 00", "Zeppelin"] and "aging-more" not in rest
    full = admin_client.get(url)  # without JavaScript: a page of its own, with the way back
    assert full.status_code == 200 and "Zeppelin" in full.get_data(as_text=True)
    assert 'href="/reports/aging?entity=DE01&amp;as_of=2026-11-26"' in full.get_data(as_text=True)

    found = admin_client.get(f"/reports/aging?as_of={AS_OF}&q=kunde+0").get_data(as_text=True)
    assert [r[1] for r in shown_rows(found)[:-1]] == [f"Kunde {n:02d}" for n in range(9, -1, -1)]
    assert "10 of 53 customer(s)" in text(html.fromstring(found).xpath("//caption")[0])
    assert shown_rows(found)[-1] == rows[-1]  # the totals stay those of every customer
    assert admin_client.get("/reports/aging/rows?entity=NOPE&currency=EUR").status_code == 404
    missing = admin_client.get(f"/reports/aging/rows?as_of={AS_OF}&offset=50")  # which currency's slice?
    assert missing.status_code == 400 and "currency=EUR" in missing.get_data(as_text=True)
