"""Bulk actions on the invoice list (issue 13 item 3): tick invoices, or all matching the filters, then Post, Resend
or Export. Post and Resend show what they will do first and act only on Confirm; what they leave alone is listed
with the reason; the e-mail state after posting follows live until it is final."""
import csv
import io
import os
import re
import subprocess
import sys
from datetime import date

import pytest
from rq import Queue
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, Customer, Event, Invoice, InvoiceDelivery
from app.queues import get_redis
from app.records.invoices import post_invoice
from tests.confirming import confirm_pairs
from tests.conftest import ROOT
from tests.factories import make_contract, make_entity


def bill(entity, as_of=date(2026, 11, 26)):
    run = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False).run
    execute_run(run.id, inline=True)


def drafts_off():
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, "auto_post": False}


@pytest.fixture
def drafts(app):
    """DE01 with four drafts (C-1 … C-4, November 2026); C-1's posted already as DE01-2026-000001; C-3's
    customer pays by SEPA direct debit; C-4's customer has no e-mail address. Contract reference → invoice id."""
    with app.app_context():
        drafts_off()
        entity = make_entity(locale="de_DE")
        for n in (1, 2, 3, 4):
            make_contract(entity, f"C-{n}", start=date(2026, 11, 1), customer=f"Customer {n}")
        db.session.commit()
        bill(entity)
        sepa = db.session.scalar(select(Customer).where(Customer.name == "Customer 3"))
        sepa.payment_method, sepa.iban = "sepa_debit", "DE89370400440532013000"
        sepa.mandate_reference, sepa.mandate_date = "MANDATE-3", date(2026, 1, 15)
        db.session.scalar(select(Customer).where(Customer.name == "Customer 4")).email = None
        ids = {i.contract.reference: i.id for i in db.session.scalars(select(Invoice))}
        post_invoice(db.session.get(Invoice, ids["C-1"]), Actor.system("test"))
        db.session.commit()
        return ids


def selection(*ids) -> str:
    return "selected=1" + "".join(f"&invoice={i}" for i in ids)


def invoice(app, invoice_id) -> Invoice:
    with app.app_context():
        found = db.session.get(Invoice, invoice_id)
        db.session.expunge(found)
        return found


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_list_has_a_labelled_box_per_row_select_all_and_the_bulk_actions(app, client_as, drafts):
    page = client_as("accountant").get("/invoices").get_data(as_text=True)
    assert 'form id="bulk-invoices" method="get"' in page
    assert f'name="invoice" value="{drafts["C-2"]}" form="bulk-invoices"' in page
    assert '<span class="visually-hidden">Select draft C-2 2026-11-01</span>' in page
    assert '<span class="visually-hidden">Select invoice DE01-2026-000001</span>' in page
    assert 'data-select-all="invoice"' in page and "Select all invoices on this page" in page
    assert 'name="all" value="1"' in page and "all 4 invoices matching these filters" in page
    assert 'id="bulk-post"' in page and 'id="bulk-resend"' in page and 'id="bulk-export"' in page
    viewer = client_as("viewer").get("/invoices").get_data(as_text=True)
    assert 'id="bulk-export"' in viewer and 'id="bulk-post"' not in viewer and 'id="bulk-resend"' not in viewer
    assert client_as("viewer").get("/invoices/bulk/post?" + selection(drafts["C-2"])).status_code == 403


def test_bulk_post_shows_what_will_happen_then_numbers_gaplessly_and_leaves_the_posted_one_alone(app, client_as, drafts):
    accountant = client_as("accountant")
    chosen = [drafts[c] for c in ("C-4", "C-1", "C-3", "C-2")]
    step = accountant.get("/invoices/bulk/post?" + selection(*chosen))
    html = step.get_data(as_text=True)
    assert step.status_code == 200 and "Post these drafts?" in html
    assert '<dd id="post-count">3</dd>' in html and '<dd id="post-left-alone">1</dd>' in html
    assert '<span class="nowrap" data-currency="EUR">175,59\xa0€</span>' in html  # 3 × 58.53
    assert '<dd id="post-emailed">2</dd>' in html  # C-4's customer has no address
    assert '<dd id="post-debited">1</dd>' in html
    assert "DE01-2026-000002</span> – <span class=\"nowrap\">DE01-2026-000003" not in html  # 3 numbers, not 2
    assert re.search(r"3 numbers of 2026: <span class=\"nowrap\">DE01-2026-000002</span> – "
                     r"<span class=\"nowrap\">DE01-2026-000004</span>", html)
    left = html[html.index('id="left-alone"'):]
    assert "DE01-2026-000001" in left and "issued as DE01-2026-000001 already: only a draft can be posted" in left
    assert invoice(app, drafts["C-2"]).status == "draft"  # looking posts nothing

    response = accountant.post("/invoices/bulk/post", data=MultiDict(confirm_pairs(html, "post-confirm")))
    assert response.status_code == 303
    assert "/invoices?selected=1" in response.headers["Location"]
    numbers = {c: invoice(app, drafts[c]).number for c in ("C-1", "C-2", "C-3", "C-4")}
    # gapless and in numbering order (issue date, contract, period): C-2, C-3, C-4 follow C-1
    assert numbers == {"C-1": "DE01-2026-000001", "C-2": "DE01-2026-000002", "C-3": "DE01-2026-000003",
                       "C-4": "DE01-2026-000004"}
    with app.app_context():
        posted = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "invoice.posted", AuditEntry.actor_label == "accountant@example.com")).all()
        assert sorted(e.details["number"] for e in posted) == ["DE01-2026-000002", "DE01-2026-000003",
                                                              "DE01-2026-000004"]
        confirmed = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.bulk_post_confirmed"))
        assert confirmed.actor_label == "accountant@example.com"
        assert confirmed.details["posted"] == 3 and confirmed.details["left_alone"] == 1
        assert confirmed.details["totals"] == {"EUR": "175.59"}
        assert confirmed.details["numbers"] == ["DE01-2026-000002", "DE01-2026-000004"]
        assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "invoice.issued")) == 4
    with app.app_context():
        assert Queue("default", connection=get_redis()).count >= 1  # the relay is asked to hand them on now

    listing = accountant.get(response.headers["Location"]).get_data(as_text=True)
    assert "3 drafts posted as DE01-2026-000002 – DE01-2026-000004; 1 left alone" in listing
    assert "Showing the 3 invoices you selected" in listing and "DE01-2026-000001" not in listing
    assert listing.count("Queued for e-mail…") == 3 and listing.count('hx-trigger="every 2s"') == 3

    again = accountant.post("/invoices/bulk/post", data=MultiDict(confirm_pairs(html, "post-confirm")))
    assert again.status_code == 409 and "Nothing was posted" in again.get_data(as_text=True)
    assert count(app, Invoice, Invoice.status == "draft") == 0


def test_a_confirm_made_stale_by_someone_posting_meanwhile_is_refused_with_the_new_plan(app, client_as, drafts):
    accountant = client_as("accountant")
    step = accountant.get("/invoices/bulk/post?" + selection(drafts["C-2"], drafts["C-3"])).get_data(as_text=True)
    fields = MultiDict(confirm_pairs(step, "post-confirm"))
    assert client_as("admin").post(f"/invoices/{drafts['C-3']}/post").status_code == 302  # meanwhile
    refused = accountant.post("/invoices/bulk/post", data=fields)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Nothing was posted: what would happen changed since the preview was made" in html
    assert '<dd id="post-count">1</dd>' in html and "issued as DE01-2026-000002 already" in html
    assert invoice(app, drafts["C-2"]).status == "draft"
    assert accountant.post("/invoices/bulk/post", data=MultiDict(confirm_pairs(html, "post-confirm"))).status_code == 303
    assert invoice(app, drafts["C-2"]).number == "DE01-2026-000003"


def test_a_draft_corrected_after_the_confirm_step_is_not_posted_on_the_old_figures(app, client_as, drafts):
    accountant = client_as("accountant")
    step = accountant.get("/invoices/bulk/post?" + selection(drafts["C-2"])).get_data(as_text=True)
    with app.app_context():  # corrected meanwhile (as the draft form does): another total
        db.session.execute(Invoice.__table__.update().where(Invoice.id == drafts["C-2"]).values(
            net_amount=98, tax_amount=19.06, total_amount=117.06, amount_due=117.06))
        db.session.commit()
    response = accountant.post("/invoices/bulk/post", data=MultiDict(confirm_pairs(step, "post-confirm")))
    assert response.status_code == 409 and "117,06" in response.get_data(as_text=True)
    assert invoice(app, drafts["C-2"]).status == "draft"


def test_posting_everything_matching_the_filters_needs_no_paging(app, client_as, drafts):
    accountant = client_as("accountant")
    step = accountant.get("/invoices/bulk/post?all=1&status=draft&invoice=" + str(drafts["C-2"])).get_data(as_text=True)
    assert '<dd id="post-count">3</dd>' in step and '<dd id="post-left-alone">0</dd>' in step  # all wins over a tick
    pairs = confirm_pairs(step, "post-confirm")
    assert ("all", "1") in pairs and ("status", "draft") in pairs and not any(n == "invoice" for n, _ in pairs)
    response = accountant.post("/invoices/bulk/post", data=MultiDict(pairs))
    assert response.status_code == 303
    assert count(app, Invoice, Invoice.status == "draft") == 0


def test_nothing_ticked_goes_back_to_the_list_saying_so(app, client_as, drafts):
    accountant = client_as("accountant")
    response = accountant.get("/invoices/bulk/post?selected=1&status=draft")
    assert response.status_code == 303 and response.headers["Location"].endswith("/invoices")
    assert "Nothing done: no invoice is selected" in accountant.get("/invoices").get_data(as_text=True)


def test_bulk_resend_e_mails_the_posted_ones_and_says_why_it_leaves_the_rest(app, client_as, drafts):
    accountant = client_as("accountant")
    with app.app_context():  # C-2 posted too; C-3 a draft; C-4 posted, its customer without an address
        for c in ("C-2", "C-4"):
            post_invoice(db.session.get(Invoice, drafts[c]), Actor.system("test"))
        db.session.commit()
    chosen = [drafts[c] for c in ("C-1", "C-2", "C-3", "C-4")]
    html = accountant.get("/invoices/bulk/resend?" + selection(*chosen)).get_data(as_text=True)
    assert "E-mail these invoices again?" in html and '<dd id="resend-count">2</dd>' in html
    assert '<dd id="resend-customers">2</dd>' in html and '<dd id="resend-left-alone">2</dd>' in html
    left = html[html.index('id="left-alone"'):]
    assert "a draft: it is e-mailed when it is posted" in left and "the customer has no e-mail address" in left
    assert count(app, InvoiceDelivery) == 0
    response = accountant.post("/invoices/bulk/resend", data=MultiDict(confirm_pairs(html, "resend-confirm")))
    assert response.status_code == 303
    with app.app_context():
        resent = db.session.scalars(select(InvoiceDelivery.invoice_id).where(InvoiceDelivery.kind == "resend")).all()
        assert sorted(resent) == sorted([drafts["C-1"], drafts["C-2"]])
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.bulk_resend_confirmed"))
        assert entry.details["kind"] == "selected" and entry.details["invoices"] == 2
        assert entry.details["left_alone"] == {"in_progress": 0, "no_email": 1, "not_posted": 1}
    with app.app_context():
        assert Queue("delivery", connection=get_redis()).count == 2
    listing = accountant.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 invoice(s) will be e-mailed again; left alone: 1 without a customer e-mail address, 1 not posted" in listing


def rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_export_of_the_selection_and_of_all_matching_the_filters_is_the_lists_csv(app, client_as, drafts):
    viewer = client_as("viewer")
    header, *picked = rows(viewer.get("/invoices.csv?" + selection(drafts["C-1"], drafts["C-3"])))
    assert header[0] == "Number" and sorted(r[3] for r in picked) == ["C-1", "C-3"]
    assert [r[0] for r in picked if r[3] == "C-1"] == ["DE01-2026-000001"]
    _, *matching = rows(viewer.get(f"/invoices.csv?all=1&status=draft&invoice={drafts['C-1']}"))
    assert sorted(r[3] for r in matching) == ["C-2", "C-3", "C-4"]  # every draft; the tick does not narrow "all"
    _, *everything = rows(viewer.get("/invoices.csv"))  # the list's own download is unchanged
    assert len(everything) == 4
    nothing = viewer.get("/invoices.csv?selected=1&status=draft")
    assert nothing.status_code == 400 and "no invoice is selected" in nothing.get_data(as_text=True)


def work_off(sink, *queues):
    env = {**os.environ, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port)}
    result = subprocess.run([sys.executable, "worker.py", "--burst", *queues], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_after_posting_the_e_mail_state_is_live_from_queued_to_sent(app, client_as, drafts, mail_sink):
    accountant = client_as("accountant")
    step = accountant.get("/invoices/bulk/post?" + selection(drafts["C-2"], drafts["C-4"])).get_data(as_text=True)
    assert accountant.post("/invoices/bulk/post", data=MultiDict(confirm_pairs(step, "post-confirm"))).status_code == 303
    url = f"/invoices/{drafts['C-2']}/delivery"
    queued = accountant.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Queued for e-mail…" in queued and 'hx-trigger="every 2s"' in queued and f'hx-get="{url}"' in queued
    detail = accountant.get(f"/invoices/{drafts['C-2']}").get_data(as_text=True)
    assert f'id="delivery-state-{drafts["C-2"]}"' in detail and 'hx-trigger="every 2s"' in detail

    work_off(mail_sink, "default", "delivery", "collection")  # the relay the post asked for, then the e-mails

    sent = accountant.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r"E-mailed to c-2@example\.com at \d\d:\d\d", sent), sent
    assert "hx-trigger" not in sent  # final: it asks no more
    assert sorted(m["To"] for m in mail_sink.messages()) == ["c-1@example.com", "c-2@example.com"]  # C-1: the fixture's
    no_address = accountant.get(f"/invoices/{drafts['C-4']}/delivery?compact=1",
                                headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Not e-mailed: customer Customer 4 has no e-mail address" in no_address and "hx-trigger" not in no_address
    assert ">Resend<span class=\"visually-hidden\"> invoice DE01-2026-000003</span></button>" in no_address
    listing = accountant.get("/invoices?" + selection(drafts["C-2"], drafts["C-4"])).get_data(as_text=True)
    assert "E-mailed to c-2@example.com at" in listing and 'hx-trigger="every 2s"' not in listing
    viewer = client_as("viewer").get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "E-mailed to" in viewer and "Retry" not in viewer


def test_a_failed_e_mail_says_why_and_offers_retry(app, client_as, drafts):
    with app.app_context():
        db.session.add(InvoiceDelivery(invoice_id=drafts["C-1"], kind="auto", status="failed", attempts=3,
                                       recipient="c-1@example.com", error="SMTP 127.0.0.1:25: connection refused"))
        db.session.commit()
    html = client_as("accountant").get(f"/invoices/{drafts['C-1']}/delivery", headers={"HX-Request": "true"})
    text = html.get_data(as_text=True)
    assert "E-mail failed: SMTP 127.0.0.1:25: connection refused" in text and "hx-trigger" not in text
    assert f'action="/invoices/{drafts["C-1"]}/resend"' in text and ">Retry<" in text


def test_all_matching_reads_the_period_filter_as_the_entity_writes_dates(app, client_as, drafts):
    """DE01 writes 01.11.2026: "all matching" acts on what the list shows for that filter, never on more."""
    accountant = client_as("accountant")
    november = accountant.get("/invoices/bulk/post?all=1&status=draft&period_from=01.11.2026&period_to=30.11.2026")
    assert '<dd id="post-count">3</dd>' in november.get_data(as_text=True)
    december = accountant.get("/invoices/bulk/post?all=1&status=draft&period_from=01.12.2026", follow_redirects=True)
    assert '<dd id="post-count">3</dd>' not in december.get_data(as_text=True)
    assert count(app, Invoice, Invoice.status == "draft") == 3
