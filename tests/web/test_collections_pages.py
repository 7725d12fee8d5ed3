"""Collections > Batches: the batch list, a batch's debits, Close, pain.008, the bank's answers, per role."""
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from lxml import etree
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Collection, Customer, Invoice, LegalEntity, Payment, SepaBatch, SepaBatchItem
from app.payments.collection import start_collection
from app.payments.target2 import collection_date, is_business_day
from tests.confirming import confirm_fields
from tests.factories import CUSTOMER_ADDRESS, make_contract, make_entity

ROLES = ("viewer", "accountant", "admin")
ACTORS = ("accountant", "admin")
XSS = "<script>alert(1)</script>"
IBAN = "DE89370400440532013000"


@pytest.fixture
def world(app, users):
    """DE01 with SEPA creditor data; Bolt and a customer named like a script each have a debit in the open batch."""
    return build_world(app)


def build_world(app, creditor: bool = True, bad_iban_customer: bool = False) -> dict:
    with app.app_context():
        entity = make_entity()
        if creditor:
            entity.sepa_creditor_id, entity.iban, entity.bic = ("DE98ZZZ09999999999", "DE02120300000000202051",
                                                                "BYLADEM1001")
        names = ["Bolt", XSS] + (["Broken IBAN Ltd"] if bad_iban_customer else [])
        for n, name in enumerate(names, start=1):
            db.session.add(Customer(legal_entity_id=entity.id, name=name, email=f"ap{n}@example.com",
                                    payment_method="sepa_debit", **CUSTOMER_ADDRESS,
                                    iban=IBAN if name != "Broken IBAN Ltd" else "DE89370400440532013001",
                                    mandate_reference=f"MANDATE-{n}", mandate_date=date(2026, 1, 15)))
            db.session.flush()
            make_contract(entity, f"C-{n}", start=date(2026, 11, 1), customer=name)
        db.session.commit()
        run = start_billing_run(entity, date(2026, 11, 26), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        invoices = list(db.session.scalars(select(Invoice).order_by(Invoice.id)))
        for invoice in invoices:
            start_collection(invoice.id)
        batch = db.session.scalar(select(SepaBatch))
        return {"entity": entity.id, "batch": batch.id, "invoices": [i.id for i in invoices],
                "numbers": [i.number for i in invoices], "items": [i.id for i in batch.items],
                "e2e": [i.end_to_end_id for i in batch.items], "today": entity.today()}


def close(client, world):
    """Close batch… → the confirm step → its Close button (a bare POST when the step offers none)."""
    url = f"/collections/batches/{world['batch']}/close"
    step = client.get(url).get_data(as_text=True)
    fields = confirm_fields(step, "close-confirm") if 'id="close-confirm"' in step else {}
    return client.post(url, data=fields)


def get(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


# ------------------------------------------------------------------ reading, per role
@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_batches_and_a_batch(client_as, world, role):
    client = client_as(role)
    listing = client.get("/collections")
    html = listing.get_data(as_text=True)
    assert listing.status_code == 200
    assert f'href="/collections/batches/{world["batch"]}"' in html and "badge-open" in html
    assert "117,06\xa0€" in html  # the control sum so far, in the entity's locale (de_DE)
    page = client.get(f"/collections/batches/{world['batch']}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    for number, e2e in zip(world["numbers"], world["e2e"]):
        assert number in body and e2e in body
    assert ("Close batch" in body) is (role != "viewer")
    assert client.get("/collections/batches/999").status_code == 404
    partial = client.get("/collections?page=1", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True) and "batches-table" in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]


def test_a_customer_named_like_a_script_is_escaped(client_as, world):
    client = client_as("accountant")
    close(client, world)
    body = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert XSS not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert XSS not in client.get("/collections").get_data(as_text=True)


def test_no_entity_and_no_batches_say_what_comes_next(app, client_as):
    client = client_as("viewer")
    assert "No legal entity yet" in client.get("/collections").get_data(as_text=True)
    with app.app_context():
        make_entity()
        db.session.commit()
    html = client.get("/collections").get_data(as_text=True)
    assert "No SEPA batches yet" in html and "Nothing needs a person" in html


@pytest.mark.parametrize("role", ROLES)
def test_only_accountants_and_admins_act(app, client_as, world, role):
    client = client_as(role)
    item = world["items"][0]
    expected = 403 if role == "viewer" else None
    responses = [
        close(client, world) if role != "viewer" else client.post(f"/collections/batches/{world['batch']}/close"),
        client.post(f"/collections/batches/{world['batch']}/items/{item}/outcome",
                    data={"outcome": "collected", "date": "2026-12-01"}),
        client.post(f"/collections/batches/{world['batch']}/results",
                    data={"file": (BytesIO(b"end_to_end_id,outcome,date,reason\n"), "r.csv")}),
    ]
    if expected:
        assert [r.status_code for r in responses] == [403, 403, 403]
        with app.app_context():
            assert get(SepaBatch, world["batch"]).status == "open"
    else:
        assert responses[0].status_code == 303  # closed
        assert responses[1].status_code == 303  # collected
        assert responses[2].status_code == 422  # a file without rows
    assert client.post(f"/collections/batches/{world['batch']}/close", csrf=False).status_code == 400


# ------------------------------------------------------------------ close and download
def test_close_then_download_a_valid_pain008_whose_control_sum_is_the_debits(app, client_as, world):
    client = client_as("accountant")
    assert client.get(f"/collections/batches/{world['batch']}/pain008.xml").status_code == 404  # not closed yet
    response = close(client, world)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Batch #%d closed: 2 debits" % world["batch"] in page and "Download pain.008" in page
    with app.app_context():
        batch = get(SepaBatch, world["batch"])
        items_total = sum(i.amount for i in batch.items)
        due = get(Invoice, world["invoices"][0]).due_date  # pre-notified: "debited on or after"
        expected = collection_date(due, world["today"], 2)
        assert (batch.status, batch.collection_date) == ("closed", expected) and expected >= due
        assert is_business_day(expected)
        message_id = batch.message_id
        assert f'<dd id="message-id">{message_id}</dd>' in page and expected.isoformat() in page
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sepa_batch.closed"))
        assert entry.actor_label == "accountant@example.com"
    download = client.get(f"/collections/batches/{world['batch']}/pain008.xml")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert download.headers["Content-Disposition"] == f'attachment; filename="{message_id}.xml"'
    tree = etree.fromstring(download.data)
    ns = {"p": tree.nsmap[None]}
    assert Decimal(tree.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns)) == items_total == Decimal("117.06")
    assert tree.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=ns) == "2"
    assert tree.findtext(".//p:GrpHdr/p:MsgId", namespaces=ns) == message_id
    assert tree.nsmap[None] == "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"
    assert sorted(tree.xpath("//p:EndToEndId/text()", namespaces=ns)) == sorted(world["e2e"])
    assert "Close batch" not in client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert client_as("viewer").get(f"/collections/batches/{world['batch']}/pain008.xml").data == download.data


@pytest.mark.parametrize("role", ACTORS)
def test_missing_creditor_data_is_shown_with_where_to_add_it(app, client_as, users, role):
    world = build_world(app, creditor=False)
    response = close(client_as(role), world)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The batch was not closed" in html and "has no SEPA creditor id, IBAN, BIC" in html
    if role == "admin":
        assert 'href="/settings/entities"' in html
    else:
        assert "Ask an admin to add them under Settings &gt; Legal entities" in html
    with app.app_context():
        assert get(SepaBatch, world["batch"]).status == "open"


# ------------------------------------------------------------------ the bank's answers, one at a time
def test_collected_pays_the_invoice_and_returned_schedules_a_retry(app, client_as, world):
    client = client_as("accountant")
    close(client, world)
    first, second = world["items"]
    url = f"/collections/batches/{world['batch']}/items/{{}}/outcome"
    assert client.post(url.format(first), data={"outcome": "collected", "date": "2026-12-01"}).status_code == 303
    refused = client.post(url.format(second), data={"outcome": "returned", "date": "2026-12-01", "reason": " "})
    assert refused.status_code == 422
    assert "say why the debit was returned" in refused.get_data(as_text=True)
    with app.app_context():
        assert get(SepaBatchItem, second).status == "pending"
    returned = client.post(url.format(second), data={"outcome": "returned", "date": "2026-12-01",
                                                     "reason": "AM04 insufficient funds"})
    assert returned.status_code == 303
    with app.app_context():
        assert get(SepaBatchItem, first).status == "collected"
        invoice = get(Invoice, world["invoices"][0])
        assert (invoice.status, invoice.amount_due) == ("paid", 0)
        payment = db.session.scalar(select(Payment))
        assert (payment.recorded_by, payment.received_on) == ("accountant@example.com", date(2026, 12, 1))
        item = get(SepaBatchItem, second)
        assert (item.status, item.return_reason) == ("returned", "AM04 insufficient funds")
        assert get(Invoice, world["invoices"][1]).status == "issued"
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert "AM04 insufficient funds" in page and "badge-collected" in page and "badge-returned" in page
    again = client.post(url.format(first), data={"outcome": "collected", "date": "2026-12-01"})
    assert again.status_code == 422 and "is already collected" in again.get_data(as_text=True)
    listing = client.get("/collections").get_data(as_text=True)
    assert "Retries scheduled" in listing and "2026-12-04" in listing and world["numbers"][1] in listing


def test_an_open_batch_has_no_answer_buttons_and_refuses_answers(app, client_as, world):
    client = client_as("accountant")
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert "Returned…" not in page and "Bank result file" not in page
    response = client.post(f"/collections/batches/{world['batch']}/items/{world['items'][0]}/outcome",
                           data={"outcome": "collected", "date": world["today"].isoformat()})
    assert response.status_code == 422 and "has not been sent yet" in response.get_data(as_text=True)


# ------------------------------------------------------------------ the bank's result file
def upload(client, world, text: str):
    return client.post(f"/collections/batches/{world['batch']}/results",
                       data={"file": (BytesIO(text.encode()), "results.csv")}, content_type="multipart/form-data")


def test_a_good_result_file_records_every_answer(app, client_as, world):
    client = client_as("accountant")
    close(client, world)
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert "end_to_end_id,outcome,date,reason" in page  # the expected format is shown
    first, second = world["e2e"]
    response = upload(client, world, f"end_to_end_id,outcome,date,reason\n{first},collected,2026-12-01,\n"
                                     f"{second},returned,2026-12-02,MD06 refund request\n")
    assert response.status_code == 303
    assert "Imported 2 results: 1 collected, 1 returned." in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert [get(SepaBatchItem, i).status for i in world["items"]] == ["collected", "returned"]
        assert get(Invoice, world["invoices"][0]).status == "paid"
        retry = db.session.scalar(select(Collection).where(Collection.invoice_id == world["invoices"][1]))
        assert (retry.status, retry.next_retry_on) == ("retry_scheduled", date(2026, 12, 5))


def test_a_bad_result_file_names_every_bad_line_and_changes_nothing(app, client_as, world):
    client = client_as("admin")
    close(client, world)
    first, second = world["e2e"]
    response = upload(client, world, f"end_to_end_id,outcome,date,reason\n{first},collected,2026-12-01,\n"
                                     f"{second},returned,2026-12-01,\nX-9,paid,tomorrow,\n")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was recorded: 4 problems." in html
    for line in ("line 3: reason: say why the debit was returned", "line 4: end_to_end_id: no debit with the end-to-end id X-9",
                 "line 4: outcome: &#39;paid&#39; is not an outcome", "line 4: date: &#39;tomorrow&#39; is not a date (use YYYY-MM-DD)"):
        assert line in html
    with app.app_context():
        assert [get(SepaBatchItem, i).status for i in world["items"]] == ["pending", "pending"]
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 0
        assert get(Invoice, world["invoices"][0]).status == "issued"
    not_csv = client.post(f"/collections/batches/{world['batch']}/results",
                          data={"file": (BytesIO(b"\xff\xfe\x00bad"), "r.csv")}, content_type="multipart/form-data")
    assert not_csv.status_code == 422 and "UTF-16 text" in not_csv.get_data(as_text=True)


# ------------------------------------------------------------------ collections needing attention
def test_failed_collections_need_attention_with_their_reason(app, client_as, users):
    world = build_world(app, bad_iban_customer=True)
    html = client_as("viewer").get("/collections").get_data(as_text=True)
    section = html[html.index('id="attention"'):]
    assert "Broken IBAN Ltd" in section and "invalid checksum" in section and "badge-failed" in section
    assert f'href="/invoices/{world["invoices"][2]}"' in section
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert entity.code in html


def attention_section(client) -> str:
    html = client.get("/collections").get_data(as_text=True)
    return html[html.index('id="attention"'):]


def test_a_reversed_direct_debit_waits_for_a_person_among_the_collections_needing_attention(app, client_as, users,
                                                                                           world):
    client = client_as("accountant")
    assert close(client, world).status_code == 303
    on = world["today"].isoformat()
    answer = client.post(f"/collections/batches/{world['batch']}/items/{world['items'][0]}/outcome",
                         data={"outcome": "collected", "date": on, "reason": ""})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    with app.app_context():
        payment_id = db.session.scalar(select(Payment.id))
    assert "Bolt" not in attention_section(client)
    client.post(f"/invoices/{world['invoices'][0]}/payments/{payment_id}/reverse",
                data={"reason": "the bank recalled the debit"})
    html = attention_section(client)
    assert "Bolt" in html and "badge-waiting" in html and "the bank recalled the debit" in html
    with app.app_context():
        assert db.session.get(Collection, db.session.scalar(
            select(Collection.id).where(Collection.invoice_id == world["invoices"][0]))).status == "waiting"
        assert db.session.scalar(select(func.count()).select_from(SepaBatchItem)) == 2  # no new debit by itself


# ------------------------------------------------------------------ confirm before closing (issue 13)
def test_close_shows_debits_totals_dates_and_what_drops_out_before_anything_is_closed(app, client_as, world):
    from app.records.credit_notes import CreditRequest, credit_invoice

    with app.app_context():  # Bolt's invoice is credited in full: its debit drops out
        credit_invoice(get(Invoice, world["invoices"][0]), CreditRequest(reason="cancelled"), Actor.system("test"))
        db.session.commit()
    client = client_as("accountant")
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert f'href="/collections/batches/{world["batch"]}/close"' in page and 'id="close-batch"' in page
    step = client.get(f"/collections/batches/{world['batch']}/close")
    html = step.get_data(as_text=True)
    assert step.status_code == 200 and "Close SEPA batch" in html
    assert '<dd id="close-debits">1</dd>' in html
    assert '<span class="nowrap" data-currency="EUR">58,53\xa0€</span>' in html
    with app.app_context():
        due = get(Invoice, world["invoices"][1]).due_date
    expected = collection_date(due, world["today"], 2)
    assert f"{expected.isoformat()} (1 debit)" in html
    assert '<dd id="close-dropped-count">0</dd>' in html  # a credited debit left the open batch at once
    assert ">Close batch with 1 debit</button>" in html and 'id="close-cancel"' in html
    with app.app_context():
        assert get(SepaBatch, world["batch"]).status == "open"  # looking closes nothing


def test_a_pending_debit_whose_invoice_is_paid_meanwhile_is_listed_as_dropping_out(app, client_as, world):
    from app.payments.ledger import record_payment

    with app.app_context():
        record_payment(world["invoices"][0], Decimal("58.53"), world["today"], "", Actor.system("test"))
        db.session.commit()
    html = client_as("accountant").get(f"/collections/batches/{world['batch']}/close").get_data(as_text=True)
    assert '<dd id="close-dropped-count">1</dd>' in html and "What drops out" in html
    assert world["e2e"][0] in html and f"invoice {world['numbers'][0]} is paid" in html


def test_close_without_a_confirm_or_with_a_stale_one_shows_the_step_again_and_closes_nothing(app, client_as, world):
    client = client_as("accountant")
    url = f"/collections/batches/{world['batch']}/close"
    bare = client.post(url)
    assert bare.status_code == 409 and "nothing was confirmed yet" in bare.get_data(as_text=True)
    step = client.get(url).get_data(as_text=True)
    fields = confirm_fields(step, "close-confirm")
    forged = client.post(url, data={"confirm_token": fields["confirm_token"] + "x"})
    assert forged.status_code == 409 and "is not one this page gave out" in forged.get_data(as_text=True)
    from app.payments.ledger import record_payment

    with app.app_context():  # paid meanwhile: the step the person saw no longer says what would be sent
        record_payment(world["invoices"][0], Decimal("10.00"), world["today"], "", Actor.system("test"))
        db.session.commit()
    stale = client.post(url, data=fields)
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "changed since the preview was made" in html
    assert "48,53\xa0€, the amount due now" in html  # the new step shows the changed amount
    with app.app_context():
        assert get(SepaBatch, world["batch"]).status == "open"
    assert client.post(url, data=confirm_fields(html, "close-confirm")).status_code == 303
    with app.app_context():
        assert get(SepaBatch, world["batch"]).status == "closed"
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sepa_batch.closed"))
        assert entry.details["confirmed"]["debits"] == 2
        assert entry.details["confirmed"]["totals"] == {"EUR": "107.06"}
