"""Every issued invoice's ISO 11649 RF reference where a payer or a script sees it: the CLI and the e-mail."""
import json
from datetime import date

import pytest
from sqlalchemy import select
from stdnum import iso11649

from app.agents.builtin.invoice_delivery import check_mail_template
from app.billing.references import creditor_reference, parse_creditor_references
from app.agents.builtin.invoice_delivery import deliver
from app.extensions import db
from app.models import AgentDefinition, Invoice
from tests.integration.test_credit_notes import run
from tests.integration.test_delivery import bill_walkthrough
from tests.factories import make_contract, make_entity


def set_configuration(key, **values):
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == key))
    agent.configuration = {**agent.configuration, **values}
    db.session.commit()


def invoices_json(runner, code):
    result = runner.invoke(args=["invoices", "list", "--entity", code, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_lists_the_reference_of_issued_invoices_and_none_for_credit_notes_and_drafts(app, runner):
    with app.app_context():
        entity = make_entity()
        make_contract(entity, "C-1", start=date(2026, 11, 1))
        db.session.commit()
        run(entity)
        set_configuration("billing_run", auto_post=False)
        drafts = make_entity(code="DE02", name="Drafts GmbH", invoice_prefix="DRAFTS")
        make_contract(drafts, "C-1", start=date(2026, 11, 1))
        db.session.commit()
        run(drafts)
    credit = runner.invoke(args=["invoices", "credit", "DE01-2026-000001", "--entity", "DE01", "--amount", "10.00",
                                 "--reason", "Goodwill"])
    assert credit.exit_code == 0, credit.output

    rows = invoices_json(runner, "DE01")
    assert [(r["number"], r["creditor_reference"]) for r in rows] == [
        ("DE01-2026-000001", "RF16DE012026000001"),
        ("DE01-CN-2026-000001", None),
    ]
    assert iso11649.is_valid(rows[0]["creditor_reference"])
    [draft] = invoices_json(runner, "DE02")
    assert (draft["number"], draft["status"], draft["creditor_reference"]) == (None, "draft", None)


def test_the_email_placeholder_gives_the_printed_reference(app, db_session, mail_sink):
    set_configuration("invoice_delivery",
                      body_template="Invoice {number}, please quote {payment_reference} with your transfer.")
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    assert deliver(invoice.id, final_attempt=False).status == "sent"
    [message] = mail_sink.messages()
    body = message.get_body(preferencelist=("plain",)).get_content()
    reference = creditor_reference(invoice.number)
    spaced = " ".join(reference[i:i + 4] for i in range(0, len(reference), 4))
    assert f"Invoice {invoice.number}, please quote {spaced} with your transfer." in body
    # what a payer copies from the e-mail into a transfer is found again in the bank statement
    assert parse_creditor_references(f"Ueberweisung {spaced} danke") == [reference]


def test_the_templates_accept_the_placeholder_and_name_it_when_refusing_another():
    check_mail_template("Invoice {number}, reference {payment_reference}")
    with pytest.raises(ValueError, match=r"\{payment_reference\}"):
        check_mail_template("Pay {reference}")
