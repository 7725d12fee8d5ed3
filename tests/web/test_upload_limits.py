"""Every view that takes a file has an explicit size limit (app/web/input.py `upload_limit`); a larger upload
is a 413 that says the limit and what to do, and changes nothing."""
from __future__ import annotations

import inspect
from io import BytesIO

from sqlalchemy import func, select

from app.extensions import db
from app.models import Payment, SepaBatch, SepaBatchItem
from tests.bank_answer_files import pain002
from tests.web.test_collections_pages import close, world  # noqa: F401  (the fixture)


def file_views(app) -> dict[str, object]:
    """The views whose code reads an uploaded file."""
    return {endpoint: view for endpoint, view in app.view_functions.items()
            if "request.files" in _source(view)}


def _source(view) -> str:
    try:
        return inspect.getsource(inspect.unwrap(view))
    except (OSError, TypeError):
        return ""


def test_every_view_that_takes_a_file_says_its_limit(app):
    views = file_views(app)
    assert {"records.contracts_import", "records.bank_import", "collections.results"} <= set(views)
    missing = [endpoint for endpoint, view in views.items() if getattr(view, "upload_limit", None) is None]
    assert missing == [], f"add @upload_limit(config_key, advice) to {missing}"


def test_a_sepa_result_file_larger_than_the_limit_is_413_and_records_nothing(app, client_as, world, monkeypatch):
    client = client_as("accountant")
    close(client, world)
    with app.app_context():
        message_id = db.session.get(SepaBatch, world["batch"]).message_id
        before = (db.session.scalar(select(func.count()).select_from(Payment)),
                  sorted(db.session.scalars(select(SepaBatchItem.status))))
    first, _second = world["e2e"]
    xml = pain002(message_id, [{"end_to_end_id": first, "status": "ACSC"}])
    padded = xml.replace(b"?>", b"?>" + b" " * 10_000, 1)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = client.post(f"/collections/batches/{world['batch']}/results",
                           data={"file": (BytesIO(padded), "answer.xml")}, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "413 · Too large" in html and "4 KB" in html and "flask sepa results FILE" in html
    assert "MAX_CONTENT_LENGTH" in html
    with app.app_context():
        assert (db.session.scalar(select(func.count()).select_from(Payment)),
                sorted(db.session.scalars(select(SepaBatchItem.status)))) == before
