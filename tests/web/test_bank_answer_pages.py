"""Collections > a batch: the bank's pain.002 / camt.054 answer uploaded on the page, all or nothing."""
from io import BytesIO

from sqlalchemy import func, select

from app.extensions import db
from app.models import Invoice, LegalEntity, Payment, SepaBatch, SepaBatchItem
from tests.bank_answer_files import camt054, pain002, valid
from tests.web.test_collections_pages import close, get, world  # noqa: F401  (the fixture)


def send(client, world, data: bytes, file_format: str = ""):
    return client.post(f"/collections/batches/{world['batch']}/results",
                       data={"file": (BytesIO(data), "answer.xml"), "format": file_format},
                       content_type="multipart/form-data")


def test_a_pain002_uploaded_on_the_batch_page_records_the_answers(app, client_as, world):
    client = client_as("accountant")
    close(client, world)
    page = client.get(f"/collections/batches/{world['batch']}").get_data(as_text=True)
    assert "pain.002 status report" in page and "camt.054 notification" in page
    with app.app_context():
        message_id = get(SepaBatch, world["batch"]).message_id
    first, second = world["e2e"]
    xml = pain002(message_id, [{"end_to_end_id": first, "status": "ACSC"},
                               {"end_to_end_id": second, "status": "RJCT", "reason": "MD01"}])
    assert valid(xml, "pain.002.001.11")
    response = send(client, world, xml)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "Imported 2 results: 1 collected, 1 returned." in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        first_item, second_item = (get(SepaBatchItem, i) for i in world["items"])
        assert (first_item.status, second_item.status, second_item.return_reason) == \
            ("collected", "returned", "MD01 no mandate")
        assert get(Invoice, world["invoices"][0]).status == "paid"


def test_a_camt054_for_another_account_is_refused_and_changes_nothing(app, client_as, world):
    client = client_as("admin")
    close(client, world)
    first, _ = world["e2e"]
    xml = camt054("FR7630006000011234567890189", [
        {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": first}])
    assert valid(xml, "camt.054.001.08")
    response = send(client, world, xml, "camt054")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was recorded: 1 problem." in html
    assert "IBAN: the file is for the account FR7630006000011234567890189, not DE01" in html
    truncated = send(client, world, xml[:200])
    assert truncated.status_code == 422 and "not well-formed XML" in truncated.get_data(as_text=True)
    with app.app_context():
        assert [get(SepaBatchItem, i).status for i in world["items"]] == ["pending", "pending"]
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 0
        assert db.session.get(LegalEntity, world["entity"]).code == "DE01"
