"""Contract pages: list, filters, detail with periods, create/edit with lines, pause/resume/end, CSV import."""
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Contract, ContractLine, Customer
from tests.factories import add_tax_code, make_contract, make_entity
from tests.paging import count_text, page_link

ROLES = ("viewer", "accountant", "admin")
HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")


def run_inline(entity, as_of):
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    execute_run(result.run.id, inline=True)


@pytest.fixture
def world(app):
    """DE01: C-1 (Bolt, monthly from 1 January, billed Jan-Mar), C-2 (Starship, paused)."""
    with app.app_context():
        entity = make_entity()
        add_tax_code(entity, "DE_VAT_19_45", "19.45")  # the walkthrough's rate, which the CSV rows give bare
        billed = make_contract(entity, "C-1", start=date(2026, 1, 1), customer="Bolt")
        paused = make_contract(entity, "C-2", start=date(2026, 1, 1), customer="Starship Technologies", status="paused")
        db.session.commit()
        run_inline(entity, date(2026, 3, 10))
        return {"entity": entity.id, "billed": billed.id, "paused": paused.id, "bolt": billed.customer_id}


def contract(app, contract_id):
    with app.app_context():
        found = db.session.get(Contract, contract_id)
        return found.status, found.end_date, found.reference


def counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Contract, ContractLine, Customer))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_list_and_detail(client_as, world, role):
    client = client_as(role)
    html = client.get("/contracts").get_data(as_text=True)
    assert "C-1" in html and "Starship Technologies" in html
    assert ("Import CSV" in html) == (role != "viewer")
    detail = client.get(f"/contracts/{world['billed']}")
    assert detail.status_code == 200
    page = detail.get_data(as_text=True)
    # Billed periods with their invoices, then the next six.
    for n, month in enumerate(("01", "02", "03"), start=1):
        assert f"2026-{month}-01 – 2026-{month}-{'31' if month != '02' else '28'}" in page
        assert f"DE01-2026-00000{n}" in page
    for month in ("04", "05", "06", "07", "08", "09"):
        assert f"2026-{month}-01 –" in page
    assert "2026-10-01 –" not in page
    assert "58,53\xa0€" in page  # money in the entity's locale (Babel, de_DE)
    assert ("Pause</button>" in page) == (role != "viewer")
    assert ("End contract</button>" in page) == (role != "viewer")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_per_role(client_as, world, role):
    client = client_as(role)
    for url in ("/contracts", "/contracts?status=paused&q=c", f"/contracts/{world['billed']}",
                f"/contracts/{world['paused']}"):
        assert client.get(url).status_code == 200, url
    for url in ("/contracts/new", f"/contracts/{world['billed']}/edit", "/contracts/import", "/contracts/line-row?n=4"):
        assert client.get(url).status_code == (403 if role == "viewer" else 200), url
    assert client.get("/contracts/9999").status_code == 404


def test_search_status_filter_htmx_and_pagination(app, client_as, world):
    client = client_as("viewer")
    assert "C-2" not in client.get("/contracts?q=bolt").get_data(as_text=True)
    assert "C-1" in client.get("/contracts?q=c-1").get_data(as_text=True)
    paused = client.get("/contracts?status=paused", headers={"HX-Request": "true"})
    body = paused.get_data(as_text=True)
    assert "<html" not in body and "C-2" in body and "C-1<" not in body
    assert "HX-Request" in paused.headers["Vary"]
    assert "No contract matches" in client.get("/contracts?status=ended").get_data(as_text=True)
    with app.app_context():
        entity = db.session.get(Contract, world["billed"]).legal_entity
        for n in range(30):
            make_contract(entity, f"Z-{n:02d}", start=date(2026, 1, 1), customer="Bolt")
        db.session.commit()
    first = client.get("/contracts").get_data(as_text=True)
    assert count_text(first) == "32 in all"
    assert "Z-29" in client.get(page_link(first, "next")).get_data(as_text=True)


def test_empty_state_says_what_to_do(app, client_as):
    with app.app_context():
        make_entity()
        db.session.commit()
    html = client_as("viewer").get("/contracts").get_data(as_text=True)
    assert "No contracts yet — import a CSV or create one." in html


def test_viewer_cannot_create_edit_or_act(app, client_as, world):
    viewer = client_as("viewer")
    for url in ("/contracts/new", f"/contracts/{world['billed']}/edit", "/contracts/import", "/contracts/line-row?n=4"):
        assert viewer.get(url).status_code == 403, url
    for url in ("/contracts/new", f"/contracts/{world['billed']}/edit", f"/contracts/{world['billed']}/pause",
                f"/contracts/{world['paused']}/resume", f"/contracts/{world['billed']}/end", "/contracts/import"):
        assert viewer.post(url, data={"end_date": "2026-12-31"}).status_code == 403, url
    assert contract(app, world["billed"])[0] == "active" and contract(app, world["paused"])[0] == "paused"


def form(customer_id, **values):
    data = {"reference": "C-9", "customer_id": str(customer_id), "currency": "EUR", "frequency": "monthly",
            "start_date": "2026-04-01", "end_date": "", "payment_terms_days": "",
            "lines-1-description": "Hosting", "lines-1-quantity": "1", "lines-1-unit_price": "49.00",
            "lines-1-vat_rate": "19.45",
            "lines-2-description": "", "lines-2-quantity": "", "lines-2-unit_price": "", "lines-2-vat_rate": "",
            "lines-3-description": "Support", "lines-3-quantity": "2", "lines-3-unit_price": "80",
            "lines-3-vat_rate": "7"}
    data.update(values)
    return data


@pytest.mark.parametrize("role", ["accountant", "admin"])
def test_create_contract_with_lines(app, client_as, world, role):
    client = client_as(role)
    page = client.get(f"/contracts/new?customer={world['bolt']}").get_data(as_text=True)
    for n in (1, 2, 3):
        assert f'name="lines-{n}-vat_rate"' in page
    assert f'<option value="{world["bolt"]}" selected>' in page
    assert 'hx-get="/contracts/line-row?n=4"' in page
    response = client.post("/contracts/new", data=form(world["bolt"]))
    assert response.status_code == 302
    with app.app_context():
        created = db.session.scalar(select(Contract).where(Contract.reference == "C-9"))
        assert [(l.position, l.description) for l in created.lines] == [(1, "Hosting"), (2, "Support")]
        assert db.session.scalar(select(AuditEntry.actor_label).where(AuditEntry.action == "contract.created")) == \
            f"{role}@example.com"
    assert response.headers["Location"] == f"/contracts/{created.id}"


def test_invalid_contract_form_shows_inline_errors_with_422(app, client_as, world):
    before = counts(app)
    response = client_as("accountant").post("/contracts/new", data=form(
        world["bolt"], reference="C-1", frequency="fortnightly", **{"lines-3-vat_rate": "120", "lines-1-quantity": "x"}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing was saved" in html
    assert 'id="error-reference">contract C-1 already exists in DE01<' in html
    assert "unknown frequency &#39;fortnightly&#39;" in html
    assert 'id="error-lines-3-vat_rate">120 is outside 0-100 (a percentage, e.g. 19,45)<' in html  # de_DE
    assert 'id="error-lines-1-quantity">&#39;x&#39; is not a number: write e.g. 1.234,56' in html
    assert 'name="lines-3-vat_rate" value="120"' in html  # the typed values stay
    assert counts(app) == before


def test_add_line_row_via_htmx(client_as, world):
    response = client_as("accountant").get("/contracts/line-row?n=4", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert 'name="lines-4-description"' in html and 'hx-get="/contracts/line-row?n=5"' in html
    assert "<html" not in html


def test_edit_refuses_start_frequency_currency_once_invoiced(app, client_as, world):
    client = client_as("accountant")
    page = client.get(f"/contracts/{world['billed']}/edit").get_data(as_text=True)
    assert 'name="lines-1-unit_price" value="49,00"' in page and "has 3 invoice(s)" in page  # de_DE, the currency's digits
    data = form(world["bolt"], reference="C-1", start_date="2026-02-01", **{"lines-3-description": ""})
    data.update({"lines-3-quantity": "", "lines-3-unit_price": "", "lines-3-vat_rate": ""})
    refused = client.post(f"/contracts/{world['billed']}/edit", data=data)
    assert refused.status_code == 422
    assert "the start date cannot change: contract C-1 already has 3 invoice(s)" in refused.get_data(as_text=True)
    data["start_date"] = "2026-01-01"
    data["lines-1-unit_price"] = "59"
    assert client.post(f"/contracts/{world['billed']}/edit", data=data).status_code == 302
    with app.app_context():
        assert db.session.get(Contract, world["billed"]).lines[0].unit_price == 59


def test_pause_resume_end(app, client_as, world):
    client = client_as("accountant")
    assert client.post(f"/contracts/{world['billed']}/pause").status_code == 302
    assert contract(app, world["billed"])[0] == "paused"
    assert client.post(f"/contracts/{world['billed']}/resume").status_code == 302
    assert contract(app, world["billed"])[0] == "active"
    again = client.post(f"/contracts/{world['billed']}/resume")
    assert again.status_code == 422 and "only a paused contract can be resumed" in again.get_data(as_text=True)
    early = client.post(f"/contracts/{world['billed']}/end", data={"end_date": "2026-02-15"})
    assert early.status_code == 422
    assert "before the start of the last billed period (2026-03-01, invoice DE01-2026-000003)" in early.get_data(as_text=True)
    assert contract(app, world["billed"])[0] == "active"
    done = client.post(f"/contracts/{world['billed']}/end", data={"end_date": "2026-03-31"}, follow_redirects=True)
    assert "Contract C-1 ended." in done.get_data(as_text=True)
    assert contract(app, world["billed"])[:2] == ("ended", date(2026, 3, 31))
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "contract")
                                          .order_by(AuditEntry.id)))
    assert actions == ["contract.paused", "contract.resumed", "contract.ended"]


GOOD = [
    "DE01,N-1,Acme GmbH,ap@acme.example,Hosting,1,49.00,EUR,19.45,monthly,2026-01-31,,,,,",
    "DE01,N-1,Acme GmbH,ap@acme.example,Support,2.5,80.00,EUR,7,monthly,2026-01-31,,,,,",
    "DE01,N-2,Beta AG,,Licence,3,10.00,EUR,19,annual,2026-02-01,,,,,",
    "DE01,N-3,Bolt,,Backup,1,5.00,EUR,19,quarterly,2026-03-01,,,,,",
]


def upload(client, rows, name="contracts.csv"):
    payload = ("\n".join([HEADER, *rows]) + "\n").encode("utf-8")
    return client.post("/contracts/import", data={"file": (io.BytesIO(payload), name)},
                       content_type="multipart/form-data")


def test_import_page_shows_columns(client_as, world):
    html = client_as("accountant").get("/contracts/import").get_data(as_text=True)
    assert HEADER.replace(",", ", ") in html


@pytest.mark.parametrize("role", ["accountant", "admin"])
def test_import_a_good_file(app, client_as, world, role):
    client = client_as(role)
    response = upload(client, GOOD)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported 3 contracts with 4 lines; created 2 customers." in page
    assert counts(app) == (5, 6, 4)
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "contracts.imported"))
        assert entry.actor_label == f"{role}@example.com"


def test_import_a_bad_file_lists_every_bad_row_and_imports_nothing(app, client_as, world):
    before = counts(app)
    rows = [GOOD[0], "DE01,N-2,Beta AG,,Licence,three,10,EUR,19,annual,2026-02-01,,,,,", GOOD[3],
            "XX99,N-4,Gamma,,Licence,1,10,EUR,19,annual,2026-02-01,,,,,",
            "DE01,N-5,Delta,,Licence,1,10,EUR,120,fortnightly,2026-02-01,,,,,"]
    response = upload(client_as("accountant"), rows)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing was imported: 4 problems." in html
    for message in ("line 3: quantity: &#39;three&#39; is not a number",
                    "line 5: entity: unknown legal entity &#39;XX99&#39;",
                    "line 6: tax_rate: 120 is outside 0-100",
                    "line 6: frequency: unknown frequency &#39;fortnightly&#39;"):
        assert message in html
    assert counts(app) == before


def test_import_without_a_file_or_with_an_unreadable_file(client_as, world):
    client = client_as("accountant")
    assert "choose a CSV file" in client.post("/contracts/import", data={}).get_data(as_text=True)
    bad = client.post("/contracts/import", data={"file": (io.BytesIO(b"M\x81ller"), "x.csv")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and "neither UTF-8 nor Windows-1252" in bad.get_data(as_text=True)
    workbook = client.post("/contracts/import", data={"file": (io.BytesIO(b"PK\x03\x04\x14\x00"), "x.xlsx")},
                           content_type="multipart/form-data")
    assert workbook.status_code == 422 and "Excel workbook (.xlsx)" in workbook.get_data(as_text=True)


def test_no_period_after_the_end_date_is_listed(app, client_as):
    with app.app_context():
        entity = make_entity()
        short = make_contract(entity, "S-1", start=date.today() + timedelta(days=10), frequency="weekly",
                              end=date.today() + timedelta(days=24))
        db.session.commit()
        contract_id = short.id
    html = client_as("viewer").get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert html.count("upcoming") == 3  # weeks starting on day 10, 17 and 24
    assert "No invoices yet" in html


@pytest.fixture
def limits(app):
    """Set MAX_CONTENT_LENGTH / IMPORT_MAX_ROWS for one test; the app's values come back afterwards."""
    saved = {key: app.config[key] for key in ("MAX_CONTENT_LENGTH", "IMPORT_MAX_ROWS")}
    yield app.config.update
    app.config.update(saved)


def test_an_upload_larger_than_max_content_length_is_413_and_imports_nothing(app, client_as, world, limits):
    limits(MAX_CONTENT_LENGTH=4096)
    before = counts(app)
    rows = [f"DE01,BIG-{n},Acme GmbH,,Hosting,1,49.00,EUR,19,monthly,2026-01-31,,,,," for n in range(100)]
    response = upload(client_as("accountant"), rows)
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "413 · Too large" in html and "4 KB" in html and "flask contracts import FILE" in html
    assert counts(app) == before


def test_a_file_with_more_rows_than_the_cap_is_refused_and_points_to_the_cli(app, client_as, world, limits):
    limits(IMPORT_MAX_ROWS=3)
    before = counts(app)
    assert upload(client_as("accountant"), GOOD[:3]).status_code == 302  # three rows: within the cap
    imported = counts(app)
    assert imported != before
    more = [row.replace("N-", "M-") for row in GOOD]
    response = upload(client_as("accountant"), more)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing was imported: 1 problem." in html
    assert ("the file has more than 3 rows, the most an import here takes; import it on the command line instead: "
            "flask contracts import FILE") in html
    assert counts(app) == imported


def test_a_bad_row_after_many_batches_imports_nothing(app, client_as, world, monkeypatch):
    from app.records import importer

    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    before = counts(app)
    rows = [f"DE01,B-{n},Acme GmbH,,Hosting,1,49.00,EUR,19,monthly,2026-01-31,,,,," for n in range(9)]
    response = upload(client_as("accountant"), [*rows, "DE01,B-X,Acme GmbH,,Hosting,1,49.00,EUR,19,monthly,2026-01-31,"
                                                       "2025-01-01,,,,"])
    assert response.status_code == 422
    assert "line 11: end_date: 2025-01-01 is before start_date 2026-01-31" in response.get_data(as_text=True)
    assert counts(app) == before


@pytest.mark.parametrize("field, value, message", [
    ("reference", "C-9\r\nX", "contract reference contains a line break (CR) at character 4"),
    ("reference", "R" * 65, "contract reference is 65 characters long; at most 64 fit"),
    ("lines-1-description", "Hosting\nBcc: x@example.com", "description contains a line break (LF) at character 8"),
    ("lines-1-description", "Hosting\u2029plan", "description contains a paragraph separator (U+2029) at character 8"),
    ("customer_id", "²", "choose a customer of DE01"),
    ("customer_id", "99999999999", "choose a customer of DE01"),
])
def test_contract_form_refuses_control_characters_lengths_and_bad_ids(app, client_as, world, field, value, message):
    before = counts(app)
    response = client_as("accountant").post("/contracts/new", data={**form(world["bolt"]), field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert counts(app) == before


def test_the_purchase_order_reference_is_kept_and_checked(app, client_as, world):
    client = client_as("accountant")
    response = client.post("/contracts/new", data=form(world["bolt"], po_reference="PO-2026-0042"))
    assert response.status_code == 302
    with app.app_context():
        created = db.session.scalar(select(Contract).where(Contract.reference == "C-9"))
        assert created.po_reference == "PO-2026-0042"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Purchase order" in page and "PO-2026-0042" in page
    before = counts(app)
    response = client.post("/contracts/new", data=form(world["bolt"], reference="C-10", po_reference="PO\x1b1"))
    assert response.status_code == 422
    assert 'id="error-po_reference">purchase order reference contains the control character U+001B' in \
        response.get_data(as_text=True)
    assert counts(app) == before
