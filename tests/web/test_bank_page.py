"""Records > Bank: a camt.053 uploaded on the page (all or nothing), the unmatched queue searched, credits assigned
to invoices or marked as not ours (inline, via HTMX), Look again, an entry's page; per role and legal entity."""
from __future__ import annotations

import re
from decimal import Decimal
from io import BytesIO

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.references import creditor_reference
from app.extensions import db
from app.models import AuditEntry, BankEntry, BankStatement, Customer, Invoice, Payment
from app.payments.cash import import_statement
from tests.factories import make_entity
from tests.integration.test_reconciliation import credit, statement, three_invoices
from tests.integration.test_collection import sepa_entity

HX = {"HX-Request": "true"}
PAYER_IBAN = "DE75512108001245126199"


@pytest.fixture
def world(app, users):
    """DE01 (its account is the statements') with three open invoices: Acme Tools 2, Bolt Logistics 1."""
    with app.app_context():
        entity = sepa_entity()
        invoices = three_invoices(entity)
        db.session.commit()
        return {"entity": entity.id, "ids": [i.id for i in invoices], "numbers": [i.number for i in invoices]}


def day_statement(world, **kwargs) -> bytes:
    """One credit the agent matches (creditor reference of the first invoice) and one it cannot."""
    return statement([
        credit("58.53", "R1", creditor_reference=creditor_reference(world["numbers"][0]), counterparty_name="Acme"),
        credit("12.34", "R2", counterparty_name="Unknown Ltd", counterparty_iban=PAYER_IBAN,
               remittance="Mietkaution Halle 3"),
    ], **kwargs)


def upload(client, data: bytes, name: str = "day.xml", file_format: str = ""):
    return client.post("/bank/import", data={"file": (BytesIO(data), name), "format": file_format},
                       content_type="multipart/form-data")


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def waiting_entry(app, reference: str = "R2") -> int:
    with app.app_context():
        return db.session.scalar(select(BankEntry.id).where(BankEntry.bank_reference == reference))


def get(app, model, id_):
    with app.app_context():
        row = db.session.get(model, id_)
        db.session.expunge(row)
        return row


def test_an_upload_shows_the_summary_the_statement_and_the_queue_and_a_second_upload_adds_nothing(app, client_as,
                                                                                                   world):
    client = client_as("accountant")
    page = client.get("/bank").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and "No statement imported yet" in page
    assert "Nothing waits" in page

    response = upload(client, day_statement(world))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "Statement imported: 2 new entries." in html
    assert "1 matched" in html and "1 unmatched" in html and "Applied: 58,53\xa0€" in html
    # the statement list: file, format and version, the bank's id, entries, closing balance, who
    assert "day.xml" in html and "camt.053.001.08" in html and "STMT-2026-12-01" in html
    assert "70,87\xa0€" in html and "accountant@example.com" in html
    # the queue: payer and IBAN, text, amount, the agent's reason; what waits in all
    assert "Unknown Ltd" in html and PAYER_IBAN in html and "Mietkaution Halle 3" in html
    assert "the payer is not one known customer" in html
    assert "1 credit waits in EUR" in html and "12,34\xa0€" in html
    assert get(app, Invoice, world["ids"][0]).status == "paid"

    again = upload(client, day_statement(world), "day-again.xml")
    assert again.status_code == 200
    assert "Nothing new: imported before." in again.get_data(as_text=True)
    assert count(app, BankEntry) == 2 and count(app, BankStatement) == 1 and count(app, Payment) == 1


@pytest.mark.parametrize("data, file_format, problem", [
    (lambda w: day_statement(w, account_iban="FR7630006000011234567890189"), "",
     "the statement is for account FR7630006000011234567890189, not DE01&#39;s account"),
    (lambda w: day_statement(w, currency="USD"), "camt053", "a currency DE01 does not bill in"),
    (lambda w: day_statement(w)[:-60], "", "XML"),
    (lambda w: day_statement(w), "pdf", "format: &#39;pdf&#39; is not one of camt053, mt940, csv"),
    (lambda w: b"", "", "the file is empty"),
])
def test_a_bad_statement_is_422_with_every_problem_and_nothing_is_stored(app, client_as, world, data, file_format,
                                                                         problem):
    response = upload(client_as("accountant"), data(world), file_format=file_format)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported: " in html and problem in html
    assert (count(app, BankStatement), count(app, BankEntry), count(app, Payment)) == (0, 0, 0)
    assert all(get(app, Invoice, i).status == "issued" for i in world["ids"])


def test_no_file_chosen_is_422(client_as, world):
    response = upload(client_as("accountant"), b"", name="")
    assert response.status_code == 422 and "choose the statement file to import" in response.get_data(as_text=True)


def test_the_search_narrows_the_queue_and_answers_htmx_with_the_queue_only(app, client_as, world):
    client = client_as("viewer")
    with app.app_context():
        from app.models import LegalEntity

        entity = db.session.get(LegalEntity, world["entity"])
        import_statement(entity, day_statement(world), "day.xml", Actor.system("test"))
        import_statement(entity, statement([credit("99.00", "R3", counterparty_name="Zeta Works", remittance="Z")],
                                           statement_id="S2"), "z.xml", Actor.system("test"))
        db.session.commit()
    full = client.get("/bank").get_data(as_text=True)
    assert "Unknown Ltd" in full and "Zeta Works" in full and "2 credits wait in EUR" in full
    partial = client.get("/bank?q=halle", headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "HX-Request" in partial.headers["Vary"]
    assert "<html" not in html and "Unknown Ltd" in html and "Zeta Works" not in html
    assert "Zeta Works" in client.get("/bank?q=99.00", headers=HX).get_data(as_text=True)
    assert "No waiting credit matches “nobody”" in client.get("/bank?q=nobody", headers=HX).get_data(as_text=True)
    # the search box asks as the user types and keeps the search in the URL
    assert 'hx-trigger="input changed delay:300ms, search"' in full and 'hx-push-url="true"' in full


def test_assign_answers_errors_inline_and_then_applies_the_money(app, client_as, world):
    client = client_as("accountant")
    upload(client, day_statement(world))
    entry_id = waiting_entry(app)
    second = world["numbers"][1]
    page = client.get("/bank").get_data(as_text=True)
    assert f'hx-post="/bank/entries/{entry_id}/assign"' in page and f'hx-target="#entry-{entry_id}"' in page

    wrong = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": "DE01-2026-999999"}, headers=HX)
    assert wrong.status_code == 422
    html = wrong.get_data(as_text=True)
    assert f'<tr id="entry-{entry_id}">' in html and "<details open>" in html  # the row, its form open
    assert "no invoice &#39;DE01-2026-999999&#39; in this legal entity" in html
    too_much = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": second, "amount": "20.00"},
                           headers=HX)
    assert too_much.status_code == 422
    assert "20,00\xa0€ is more than the 12,34\xa0€ of this transfer not applied yet" in too_much.get_data(as_text=True)
    negative = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": second, "amount": "-1"},
                           headers=HX)
    assert negative.status_code == 422 and "-1 is negative" in negative.get_data(as_text=True)
    assert count(app, Payment) == 1 and get(app, BankEntry, entry_id).status == "unmatched"

    done = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": second}, headers=HX)
    html = done.get_data(as_text=True)
    assert done.status_code == 200, html
    assert f"Applied 12,34\xa0€ to {second}; 46,19\xa0€ still due." in html  # the entity's locale, de_DE
    assert f'<tr id="entry-{entry_id}" class="resolved">' in html
    assert 'id="queue-totals" hx-swap-oob="true"' in html and "Nothing waits" in html
    entry = get(app, BankEntry, entry_id)
    assert (entry.status, entry.applied_amount, entry.resolved_by) == ("matched", Decimal("12.34"),
                                                                       "accountant@example.com")
    assert get(app, Invoice, world["ids"][1]).amount_due == Decimal("46.19")
    with app.app_context():
        payment = db.session.scalar(select(Payment).where(Payment.bank_entry_id == entry_id))
        assert (payment.amount, payment.source, payment.recorded_by) == (Decimal("12.34"), "bank_transfer",
                                                                         "accountant@example.com")
        audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "bank_entry.applied",
                                                           AuditEntry.subject_id == entry_id))
        assert audit.details["rule"] == "manual" and audit.actor_label == "accountant@example.com"
    # the invoice page links the payment to its bank entry, whose page shows where the money went
    invoice_page = client.get(f"/invoices/{world['ids'][1]}").get_data(as_text=True)
    assert f'href="/bank/entries/{entry_id}"' in invoice_page
    entry_page = client.get(f"/bank/entries/{entry_id}").get_data(as_text=True)
    assert "Unknown Ltd" in entry_page and second in entry_page and "12,34\xa0€" in entry_page
    assert "applied" in entry_page and f"assigned to {second}" in entry_page
    assert "What waits" not in entry_page  # nothing of it waits: no forms
    # nothing of it is left to assign
    again = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": world["numbers"][2]}, headers=HX)
    assert again.status_code == 422 and "is matched: nothing of it waits" in again.get_data(as_text=True)


def test_without_htmx_the_entry_page_takes_the_forms(app, client_as, world):
    client = client_as("accountant")
    upload(client, day_statement(world))
    entry_id = waiting_entry(app)
    page = client.get(f"/bank/entries/{entry_id}").get_data(as_text=True)
    assert 'id="assign-form"' in page and 'id="not-ours-form"' in page
    assert "the payer is not one known customer" in page
    wrong = client.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": "", "amount": "abc"})
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 422
    assert "write the number of the invoice this money pays" in html and "&#39;abc&#39; is not a number" in html
    part = client.post(f"/bank/entries/{entry_id}/assign",
                       data={"invoice_number": world["numbers"][2], "amount": "10.00"})
    assert part.status_code == 303 and part.headers["Location"] == f"/bank/entries/{entry_id}"
    shown = client.get(part.headers["Location"]).get_data(as_text=True)
    assert f"Applied 10,00\xa0€ to {world['numbers'][2]}; 48,53\xa0€ still due. 2,34\xa0€ of this transfer" in shown
    assert get(app, BankEntry, entry_id).status == "partially_matched"
    assert 'id="not-ours-form"' not in shown  # part of it is applied: reverse that first


def test_not_ours_needs_a_reason_and_takes_the_credit_out_of_the_queue(app, client_as, world):
    client = client_as("accountant")
    upload(client, day_statement(world))
    entry_id = waiting_entry(app)
    blank = client.post(f"/bank/entries/{entry_id}/not-ours", data={"reason": "  "}, headers=HX)
    assert blank.status_code == 422 and "say why it is not ours" in blank.get_data(as_text=True)
    assert get(app, BankEntry, entry_id).status == "unmatched"
    done = client.post(f"/bank/entries/{entry_id}/not-ours", data={"reason": "deposit for hall 3"}, headers=HX)
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "Marked as not ours: deposit for hall 3" in html
    entry = get(app, BankEntry, entry_id)
    assert (entry.status, entry.resolved_by) == ("not_ours", "accountant@example.com")
    assert "Unknown Ltd" not in client.get("/bank").get_data(as_text=True)
    assert count(app, Payment) == 1


def test_look_again_applies_what_matches_now(app, client_as, world):
    client = client_as("accountant")
    upload(client, statement([credit("58.53", "R9", counterparty_name="Someone", counterparty_iban=PAYER_IBAN)]))
    entry_id = waiting_entry(app, "R9")
    assert get(app, BankEntry, entry_id).status == "unmatched"
    with app.app_context():  # the accountant learns whose account it is: Bolt Logistics', one open invoice of 58.53
        customer = db.session.scalar(select(Customer).where(Customer.name == "Bolt Logistics"))
        customer.iban = PAYER_IBAN
        db.session.commit()
    response = client.post("/bank/rematch")
    assert response.status_code == 303 and response.headers["Location"] == "/bank"
    assert "Looked again at 1 waiting credit: 1 matched now; 0 wait for an accountant." in \
        client.get("/bank").get_data(as_text=True)
    assert get(app, BankEntry, entry_id).status == "matched"
    assert get(app, Invoice, world["ids"][2]).status == "paid"


def test_candidates_are_the_payers_open_invoices_else_those_due_the_amount(app, client_as, world):
    with app.app_context():
        db.session.scalar(select(Customer).where(Customer.name == "Bolt Logistics")).iban = PAYER_IBAN
        db.session.commit()
    client = client_as("accountant")
    upload(client, statement([
        credit("5.00", "R7", counterparty_name="ACME TOOLS GMBH", remittance="Teil"),  # by name
        credit("6.00", "R8", counterparty_name="BL Treasury", counterparty_iban=PAYER_IBAN),  # by IBAN
        credit("58.53", "R9", counterparty_name="Nobody Known"),  # unknown payer: the invoices due 58.53
        credit("7.00", "R10", counterparty_name="Nobody Known"),  # nothing is due 7.00
    ]))
    html = client.get("/bank").get_data(as_text=True)
    first, second, third = world["numbers"]

    def datalist(reference: str) -> list[str]:
        entry_id = waiting_entry(app, reference)
        found = re.search(rf'<datalist id="candidates-{entry_id}">(.*?)</datalist>', html, re.S)
        return re.findall(r'<option value="([^"]+)">', found.group(1)) if found else []

    assert datalist("R7") == [first, second]
    assert datalist("R8") == [third]
    assert datalist("R9") == [first, second, third]
    assert datalist("R10") == []


def test_an_entry_of_another_legal_entity_is_not_found(app, client_in, world):
    with app.app_context():
        other = make_entity("FR01", country="FR", iban="FR7630006000011234567890189")
        db.session.commit()
        import_statement(other, statement([credit("10.00", "F1", counterparty_name="Quelqu'un")],
                                          account_iban="FR7630006000011234567890189"), "fr.xml", Actor.system("t"))
        db.session.commit()
        foreign = db.session.scalar(select(BankEntry.id))
    client = client_in("DE01", "accountant")  # holds a role in DE01 only
    assert client.get(f"/bank/entries/{foreign}").status_code == 404
    assert client.post(f"/bank/entries/{foreign}/assign", data={"invoice_number": "x"}, headers=HX).status_code == 404
    assert client.post(f"/bank/entries/{foreign}/not-ours", data={"reason": "x"}).status_code == 404
    assert "Quelqu" not in client.get("/bank").get_data(as_text=True)
    assert get(app, BankEntry, foreign).status == "unmatched"


def test_a_viewer_sees_the_page_but_cannot_act(app, client_as, world):
    accountant = client_as("accountant")
    upload(accountant, day_statement(world))
    entry_id = waiting_entry(app)
    viewer = client_as("viewer")
    html = viewer.get("/bank").get_data(as_text=True)
    assert "Unknown Ltd" in html and "day.xml" in html and 'href="/bank"' in html  # the Records menu has Bank
    assert "Import a bank statement" not in html and "Assign" not in html and "Look again" not in html
    assert "What waits" not in viewer.get(f"/bank/entries/{entry_id}").get_data(as_text=True)
    assert upload(viewer, day_statement(world, statement_id="S-V")).status_code == 403
    assert viewer.post(f"/bank/entries/{entry_id}/assign", data={"invoice_number": world["numbers"][1]}).status_code == 403
    assert viewer.post(f"/bank/entries/{entry_id}/not-ours", data={"reason": "x"}).status_code == 403
    assert viewer.post("/bank/rematch").status_code == 403
    assert (count(app, BankStatement), get(app, BankEntry, entry_id).status) == (1, "unmatched")


def test_a_statement_larger_than_max_content_length_is_read_up_to_its_own_limit(app, client_as, world):
    saved = {key: app.config[key] for key in ("MAX_CONTENT_LENGTH", "STATEMENT_MAX_BYTES")}
    client = client_as("accountant")
    try:
        app.config.update(MAX_CONTENT_LENGTH=2048)
        data = day_statement(world)
        assert len(data) > 2048
        response = upload(client, data)
        assert response.status_code == 200 and "Statement imported: 2 new entries." in response.get_data(as_text=True)
        app.config.update(STATEMENT_MAX_BYTES=4096)
        padded = data.replace(b"<BkToCstmrStmt>", b"<BkToCstmrStmt>" + b" " * 100_000, 1)
        too_large = upload(client, padded, "big.xml")
        html = too_large.get_data(as_text=True)
        assert too_large.status_code == 413
        assert "4 KB" in html and "Statements are read up to this size" in html and "STATEMENT_MAX_BYTES" in html
    finally:
        app.config.update(saved)
    assert count(app, BankStatement) == 1
