"""Credit notes: full and partial credits, their own gapless series, customer credits, SEPA, rebilling."""
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.documents.einvoice import build_cii_xml, check_xsd
from app.extensions import db
from app.models import (AuditEntry, CustomerCredit, Event, Invoice, InvoiceSequence, Payment, SepaBatchItem)
from app.payments.collection import start_collection
from app.payments.ledger import record_payment
from app.records.credit_notes import CreditRequest, credit_invoice, left_to_credit, refund_credit
from app.records.validation import ValidationError
from app.reports.aging import aging_report
from tests.factories import make_contract, make_entity
from tests.integration.test_collection import make_sepa_customer, sepa_entity

ADMIN = Actor.system("test")
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
RSM = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}"
TWO_LINES = [("Plan", "1", "100.00", "19"), ("Support", "2", "25.00", "7")]  # 119.00 + 53.50 = 172.50


def run(entity, as_of=date(2026, 11, 26)):
    # Fixed dates, some after today: billing ahead of time is asked for, as `--ahead-of-time` does.
    result = start_billing_run(entity, as_of, "cli", ADMIN, enqueue=False, ahead_of_time=True)
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return result.run


def invoices(kind="invoice"):
    return list(db.session.scalars(select(Invoice).where(Invoice.kind == kind).order_by(Invoice.id)))


def billed(entity, **contract):
    contract.setdefault("reference", "C-1")
    contract.setdefault("start", date(2026, 11, 1))
    make_contract(entity, **contract)
    db.session.commit()
    run(entity)
    invoice, = invoices()
    return invoice


def credit(invoice, reason="Service not delivered", today=None, **request):
    note = credit_invoice(invoice, CreditRequest(reason, **request), ADMIN, today=today)
    db.session.commit()
    return note


def snapshot():
    """Everything a refused credit must leave as it was."""
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(Invoice)),
            [(i.status, i.amount_due) for i in db.session.scalars(select(Invoice).order_by(Invoice.id))],
            db.session.scalars(select(InvoiceSequence.last_number).order_by(InvoiceSequence.series)).all(),
            db.session.scalar(select(func.count()).select_from(Event)),
            db.session.scalar(select(func.count()).select_from(AuditEntry)))


def test_a_full_credit_frees_the_period_and_the_next_run_bills_it_again(db_session):
    entity = make_entity()
    invoice = billed(entity)
    note = credit(invoice)
    assert note.number == "DE01-CN-2026-000001" and note.kind == "credit_note" and note.status == "issued"
    assert (note.net_amount, note.tax_amount, note.total_amount, note.amount_due) == (
        Decimal("49.00"), Decimal("9.53"), Decimal("58.53"), 0)
    assert [(l.position, l.credited_position, l.description) for l in note.lines] == [(1, 1, "Subscription")]
    assert (invoice.status, invoice.amount_due) == ("credited", 0)
    assert note.period_start == invoice.period_start and note.credited_invoice_id == invoice.id
    event = db.session.scalar(select(Event).where(Event.type == "credit_note.issued"))
    assert event.payload["number"] == note.number and event.payload["credits"] == invoice.number
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor_label == "test")).all()
    assert {"credit_note.issued", "invoice.credited"} <= set(actions)

    again = run(entity)
    assert again.invoices_created == 1
    first, corrected = invoices()
    assert corrected.period_start == first.period_start and corrected.number == "DE01-2026-000002"
    effective = [i for i in invoices() if i.status != "credited"]
    assert len(effective) == 1 and run(entity).invoices_created == 0  # never two effective invoices


def test_partial_credits_by_lines_and_amount_then_what_is_left(db_session):
    entity = make_entity()
    invoice = billed(entity, lines=TWO_LINES)
    assert invoice.total_amount == Decimal("172.50")
    by_line = credit(invoice, lines=(2,))
    assert (by_line.total_amount, [l.credited_position for l in by_line.lines]) == (Decimal("53.50"), [2])
    assert (invoice.status, invoice.amount_due) == ("issued", Decimal("119.00"))
    by_amount = credit(invoice, amount=Decimal("10.00"))
    assert by_amount.number == "DE01-CN-2026-000002" and by_amount.total_amount == Decimal("10.00")
    assert [(l.vat_rate, l.unit_price) for l in by_amount.lines] == [(Decimal("19"), Decimal("8.40"))]
    assert left_to_credit(invoice) == Decimal("109.00") == invoice.amount_due

    with pytest.raises(ValidationError, match="line 2 of invoice DE01-2026-000001 is credited already"):
        credit(invoice, lines=(2,))
    db.session.rollback()
    rest = credit(invoice)  # the rest after partial credits: each rate's net not credited yet
    assert [(l.description, l.unit_price) for l in rest.lines] == [
        ("Credit on invoice DE01-2026-000001: the rest", Decimal("91.60"))]
    assert (rest.total_amount, invoice.status, invoice.amount_due) == (Decimal("109.00"), "credited", 0)


def test_credit_the_rest_when_vat_rounding_leaves_an_amount_no_net_gives(db_session):
    entity = make_entity()
    invoice = billed(entity)  # 49.00 + 19.45 % = 58.53
    assert credit(invoice, amount=Decimal("1.02")).net_amount == Decimal("0.85")
    with pytest.raises(ValidationError, match="57,51\xa0€ cannot be split exactly .* credit 57,50\xa0€ "
                                              "instead \\(or give no amount to credit the rest"):
        credit(invoice, amount=Decimal("57.51"))
    db.session.rollback()
    rest = credit(invoice)  # net 48.15 at 19.45 % is 57.52: a cent of VAT rounding over the 57.51 left
    assert (rest.net_amount, rest.total_amount) == (Decimal("48.15"), Decimal("57.52"))
    assert (invoice.status, invoice.amount_due) == ("credited", 0)
    assert db.session.scalar(select(func.count()).select_from(CustomerCredit)) == 0


def test_bad_credits_are_refused_with_the_reason_and_change_nothing(db_session):
    entity = make_entity()
    invoice = billed(entity, lines=TWO_LINES)
    note = credit(invoice, amount=Decimal("50.00"))
    before = snapshot()
    cases = [
        (dict(amount=Decimal("122.51")), "122,51\xa0€ is more than the 122,50\xa0€ left to credit on invoice "
                                         "DE01-2026-000001 \\(credited already: DE01-CN-2026-000001\\)"),
        (dict(lines=(1, 3)), "has no line 3: its lines are 1, 2"),
        (dict(amount=Decimal("1.005")), "1.005 has more decimals than EUR allows"),
        (dict(lines=(1,), amount=Decimal("1.00")), "either an amount or chosen lines"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationError, match=message):
            credit(invoice, **request)
        db.session.rollback()
    with pytest.raises(ValidationError, match="is a credit note: a credit note is not credited"):
        credit(note, amount=Decimal("1.00"))
    db.session.rollback()
    with pytest.raises(ValidationError, match="say why the invoice is credited"):
        credit(invoice, reason="  ", amount=Decimal("1.00"))
    db.session.rollback()
    assert snapshot() == before


def test_a_draft_is_not_credited(db_session, app):
    from app.models import AgentDefinition

    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, "auto_post": False}
    entity = make_entity()
    draft = billed(entity)
    assert draft.status == "draft"
    with pytest.raises(ValidationError, match="a draft has no number yet and is not credited: edit or delete"):
        credit(draft)


def test_credit_notes_are_numbered_gapless_in_their_own_series_per_year(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    make_contract(entity, "C-2", start=date(2026, 11, 1))
    db.session.commit()
    run(entity)
    first, second = invoices()
    numbers = [credit(first, amount=Decimal("1.00"), today=date(2026, 12, 30)).number,
               credit(second, amount=Decimal("1.00"), today=date(2026, 12, 31)).number,
               credit(first, amount=Decimal("1.00"), today=date(2027, 1, 2)).number]
    assert numbers == ["DE01-CN-2026-000001", "DE01-CN-2026-000002", "DE01-CN-2027-000001"]
    run(entity, date(2027, 1, 5))  # invoices keep their own series (December and January of both)
    assert [i.number for i in invoices()][2:] == [f"DE01-2027-00000{n}" for n in (1, 2, 3, 4)]


def test_a_credit_on_a_paid_invoice_becomes_a_customer_credit_the_next_run_applies(db_session):
    entity = make_entity()
    invoice = billed(entity)
    record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    note = credit(invoice, amount=Decimal("20.00"))
    assert (invoice.status, invoice.amount_due) == ("paid", 0)
    customer_credit = db.session.scalar(select(CustomerCredit))
    assert (customer_credit.amount, customer_credit.credit_note_id) == (Decimal("20.00"), note.id)

    run(entity, date(2026, 12, 3))  # December's invoice takes the credit
    december = invoices()[1]
    assert (december.amount_due, december.status) == (Decimal("38.53"), "issued")
    applied = db.session.scalar(select(Payment).where(Payment.invoice_id == december.id))
    assert (applied.source, applied.amount, applied.reference) == (
        "customer_credit", Decimal("20.00"), f"Credit note {note.number}")
    db.session.refresh(customer_credit)
    assert customer_credit.available == 0
    report = aging_report(entity, date(2026, 12, 3))
    assert [r.total for s in report.sections for r in s.rows] == [Decimal("38.53")]
    run(entity, date(2027, 1, 3))
    assert invoices()[2].amount_due == Decimal("58.53")  # used once


def test_a_customer_credit_can_be_refunded_instead(db_session):
    entity = make_entity()
    invoice = billed(entity)
    record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    credit(invoice)
    customer_credit = db.session.scalar(select(CustomerCredit))
    refund_credit(customer_credit, "transfer 77", date(2026, 12, 1), ADMIN)
    db.session.commit()
    assert (customer_credit.refunded_amount, customer_credit.available) == (Decimal("58.53"), 0)
    with pytest.raises(ValidationError, match="nothing is left of this credit"):
        refund_credit(customer_credit, "again", date(2026, 12, 2), ADMIN)
    db.session.rollback()
    run(entity, date(2026, 12, 3))
    # the period was fully credited: billed again; December too; no credit left to apply
    assert [i.amount_due for i in invoices() if i.status == "issued"] == [Decimal("58.53")] * 2


def test_a_pending_sepa_debit_drops_out_or_shrinks(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    make_sepa_customer(entity, "Starship Technologies")
    from app.models import Customer

    for i, customer in enumerate(db.session.scalars(select(Customer).order_by(Customer.id))):
        make_contract(entity, f"C-{i}", start=date(2026, 11, 1), customer=customer.name)
    db.session.commit()
    run(entity)
    first, second = invoices()
    for invoice in (first, second):
        start_collection(invoice.id)
    credit(first, amount=Decimal("20.00"))
    credit(second)
    items = {i.invoice_id: i for i in db.session.scalars(select(SepaBatchItem))}
    assert (items[first.id].status, items[first.id].amount) == ("pending", Decimal("38.53"))
    assert "credited by DE01-CN-2026-000001" in items[first.id].note
    assert items[second.id].status == "withdrawn" and "DE01-CN-2026-000002" in items[second.id].note


def test_the_credit_notes_e_invoice_is_a_381_referencing_the_invoice_and_valid(db_session):
    entity = make_entity()
    invoice = billed(entity, lines=TWO_LINES)
    note = credit(invoice, lines=(1,), reason="Plan cancelled")
    xml = build_cii_xml(note)
    check_xsd(xml)
    root = etree.fromstring(xml)
    assert root.find(f"{RSM}ExchangedDocument/{RAM}TypeCode").text == "381"
    reference = root.find(f".//{RAM}ApplicableHeaderTradeSettlement/{RAM}InvoiceReferencedDocument")
    assert reference.find(f"{RAM}IssuerAssignedID").text == invoice.number  # BT-25
    assert reference.find(f"{RAM}FormattedIssueDateTime/*").text == invoice.issue_date.strftime("%Y%m%d")  # BT-26
    assert root.find(f".//{RAM}GrandTotalAmount").text == "119.00"
    assert root.find(f".//{RAM}SpecifiedTradeSettlementPaymentMeans") is None
    assert "Plan cancelled" in root.find(f".//{RAM}IncludedNote/{RAM}Content").text


def test_credit_notes_reduce_sales_in_dso_and_are_never_open_receivables(db_session):
    from app.reports.aging import credit_sales_query

    entity = make_entity()
    invoice = billed(entity)
    credit(invoice, amount=Decimal("8.53"), today=date(2026, 11, 26))
    sales = dict(db.session.execute(credit_sales_query(entity.id, date(2026, 11, 30))).all())
    assert Decimal(sales["EUR"]) == Decimal("50.00")
    report = aging_report(entity, date(2026, 11, 30))
    assert [(r.total, r.invoice_count) for s in report.sections for r in s.rows] == [(Decimal("50.00"), 1)]
