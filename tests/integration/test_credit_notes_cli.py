"""Credit notes through the CLI, e-mailed by the Invoice Delivery Agent, and numbered under races."""
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.agents.events import relay_outbox
from app.extensions import db
from app.models import CustomerCredit, Invoice, InvoiceDelivery
from app.records.credit_notes import CreditRequest, credit_invoice
from tests.integration.test_billing_concurrency import CLI, in_thread
from tests.integration.test_credit_notes import TWO_LINES, run
from tests.integration.test_delivery import attachment, work_off
from tests.factories import make_contract, make_entity


def seed(app, count=1, lines=None):
    with app.app_context():
        entity = make_entity()
        for i in range(count):
            make_contract(entity, f"C-{i + 1}", start=date(2026, 11, 1), lines=lines)
        db.session.commit()
        run(entity)


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def test_credit_prints_the_number_and_lists_both_kinds(app, runner):
    seed(app, lines=TWO_LINES)
    code, out = invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--lines", "2",
                       "--reason", "Support was not used")
    assert (code, out) == (0, "DE01-CN-2026-000001\n")
    code, out = invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--amount", "10.00",
                       "--reason", "Goodwill", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data == {"number": "DE01-CN-2026-000002", "type": "credit_note", "credits": "DE01-2026-000001",
                    "currency": "EUR", "net": "8.40", "tax": "1.60", "total": "10.00", "invoice_status": "issued",
                    "invoice_amount_due": "109.00", "customer_credit": None}
    code, out = invoke(runner, "invoices", "list", "--entity", "DE01", "--json")
    rows = json.loads(out)
    assert [(r["number"], r["type"], r["credits"], r["total"], r["amount_due"]) for r in rows] == [
        ("DE01-2026-000001", "invoice", None, "172.50", "109.00"),
        ("DE01-CN-2026-000001", "credit_note", "DE01-2026-000001", "53.50", "0.00"),
        ("DE01-CN-2026-000002", "credit_note", "DE01-2026-000001", "10.00", "0.00"),
    ]


def test_pdf_of_a_credit_note_says_what_it_is(app, runner, tmp_path):
    seed(app)
    invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--reason", "Cancelled in time")
    target = tmp_path / "cn.pdf"
    code, out = invoke(runner, "invoices", "pdf", "DE01-CN-2026-000001", "--entity", "DE01", "-o", str(target))
    assert code == 0, out
    text = PdfReader(io.BytesIO(target.read_bytes())).pages[0].extract_text()
    for expected in ("Credit note DE01-CN-2026-000001", "DE01-2026-000001", "Cancelled in time", "No payment due"):
        assert expected in text
    assert "Please transfer" not in text


@pytest.mark.parametrize("args, message", [
    (("--amount", "58.54"), "58,54\xa0€ is more than the 58,53\xa0€ left to credit on invoice DE01-2026-000001"),
    (("--amount", "0"), "--amount: the amount to credit must be greater than zero"),
    (("--amount", "-5"), "--amount: the amount to credit must be greater than zero"),
    (("--amount", "1.001"), "1.001 has more decimals than EUR allows"),
    (("--amount", "ten"), "--amount: 'ten' is not an amount"),
    (("--lines", "1,4"), "invoice DE01-2026-000001 has no line 4: its lines are 1"),
    (("--lines", "x"), "--lines: 'x' is not a line number"),
    (("--lines", "1", "--amount", "1"), "give either --amount or --lines, not both"),
])
def test_bad_credits_fail_with_one_line_and_change_nothing(app, runner, args, message):
    seed(app)
    code, out = invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--reason", "x", *args)
    assert code == 1 and message in out, out
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert db.session.scalar(select(Invoice.amount_due)) == Decimal("58.53")


def test_crediting_a_credit_note_or_an_unknown_number_fails(app, runner):
    seed(app)
    invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--amount", "1.00", "--reason", "x")
    code, out = invoke(runner, "invoices", "credit", "DE01-CN-2026-000001", "--entity", "DE01", "--reason", "x")
    assert code == 1 and "is a credit note: a credit note is not credited" in out
    code, out = invoke(runner, "invoices", "credit", "DE01-2026-999999", "--entity", "DE01", "--reason", "x")
    assert code == 1 and "no invoice numbered 'DE01-2026-999999'" in out


def test_refund_credit_records_the_refund_once(app, runner):
    seed(app)
    with app.app_context():
        from app.audit import Actor
        from app.payments.ledger import record_payment

        record_payment(1, Decimal("58.53"), date(2026, 11, 27), "bank", Actor.system("test"))
        db.session.commit()
    invoke(runner, "invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--amount", "8.53", "--reason", "x")
    code, out = invoke(runner, "invoices", "refund-credit", "DE01-CN-2026-000001", "--entity", "DE01",
                       "--reference", "SEPA CT 4711")
    assert (code, out) == (0, "Refunded 8.53 EUR of the credit from DE01-CN-2026-000001.\n")
    code, out = invoke(runner, "invoices", "refund-credit", "DE01-CN-2026-000001", "--entity", "DE01",
                       "--reference", "again")
    assert code == 1 and "nothing is left of this credit" in out
    with app.app_context():
        assert db.session.scalar(select(CustomerCredit.refund_reference)) == "SEPA CT 4711"


def test_the_delivery_agent_e_mails_a_credit_note_once(app, db_session, mail_sink):
    entity = make_entity(locale="de_DE")
    make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
    db.session.commit()
    run(entity)
    relay_outbox()
    work_off(mail_sink, "delivery", "collection")
    invoice = db.session.scalar(select(Invoice))
    credit_invoice(invoice, CreditRequest("Double booking"), CLI)
    db.session.commit()
    assert relay_outbox().jobs == 1  # delivery only: a credit note is not collected
    relay_outbox()
    work_off(mail_sink, "delivery", "collection")
    messages = mail_sink.messages()
    assert len(messages) == 2
    message = messages[-1]
    assert message["Subject"] == "Credit note DE01-CN-2026-000001 from DE01 GmbH"
    assert "Reason: Double booking" in message.get_body().get_content()
    name, pdf = attachment(message)
    assert name == "CreditNote-DE01-CN-2026-000001.pdf" and pdf.startswith(b"%PDF")
    db.session.expire_all()
    note = db.session.scalar(select(Invoice).where(Invoice.kind == "credit_note"))
    assert db.session.scalars(select(InvoiceDelivery.status).where(InvoiceDelivery.invoice_id == note.id)).all() == ["sent"]


@pytest.mark.postgres_only
def test_concurrent_credits_are_numbered_gapless(app, db_session):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL: concurrent transactions with row locks")
    seed(app, count=6)
    ids = list(db.session.scalars(select(Invoice.id).order_by(Invoice.id)))
    db.session.rollback()

    def credit_some(invoice_ids):
        for invoice_id in invoice_ids:
            for _ in range(2):
                credit_invoice(db.session.get(Invoice, invoice_id), CreditRequest("race", amount=Decimal("1.00")), CLI)
                db.session.commit()

    threads = [in_thread(app, credit_some, ids[i::3]) for i in range(3)]
    for thread, errors in threads:
        thread.join()
        assert not errors, errors
    numbers = sorted(db.session.scalars(select(Invoice.sequence_number).where(Invoice.kind == "credit_note")))
    assert numbers == list(range(1, 13))
    assert set(db.session.scalars(select(Invoice.amount_due).where(Invoice.kind == "invoice"))) == {Decimal("56.53")}
