"""Record services on a real database: customers, contracts and invoice actions, audited, with the importer's rules."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, Contract, Customer, Event, Invoice
from app.records import contracts as contract_service
from app.records import customers as customer_service
from app.records import invoices as invoice_service
from app.records.importer import ImportFailed, import_contracts_text
from app.records.validation import ValidationError
from tests.factories import add_tax_code, make_contract, make_entity

ME = Actor("user", "accountant@example.com")
GOOD_IBAN = "DE89 3704 0044 0532 0130 00"
HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date,customer_address_line1,"
          "customer_address_line2,customer_postcode,customer_city,customer_country,customer_vat_id,buyer_reference,"
          "po_reference")


def audit(action):
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def importer_message(column, **values):
    """What the CSV importer says about `column` for a row with these values (without "line 2: column: ")."""
    row = dict(entity="DE01", contract_ref="IMP-1", customer="Importer Test", customer_email="", description="Hosting",
               quantity="1", unit_price="1", currency="EUR", tax_rate="19", frequency="monthly",
               start_date="2026-01-01", end_date="", payment_method="", iban="", mandate_reference="",
               mandate_date="", customer_address_line1="", customer_address_line2="", customer_postcode="",
               customer_city="", customer_country="", customer_vat_id="", buyer_reference="", po_reference="")
    row.update(values)
    with pytest.raises(ImportFailed) as failure:
        import_contracts_text(HEADER + "\n" + ",".join(row[c] for c in HEADER.split(",")) + "\n")
    db.session.rollback()
    prefix = f"line 2: {column}: "
    return next(e.removeprefix(prefix) for e in failure.value.errors if e.startswith(prefix))


def customer_data(**values):
    data = dict(name="Bolt", email="AP@bolt.example", address_line1="Vana-Lõuna 15", address_line2="", postcode="10134",
                city="Tallinn", subdivision="", country="ee", vat_id="EE 1020 9037 4", buyer_reference="",
                payment_method="manual", iban="", mandate_reference="", mandate_date="")
    data.update(values)
    return data


def contract_data(customer, **values):
    data = dict(reference="C-1", customer_id=str(customer.id), currency="EUR", frequency="monthly",
                start_date="2026-01-31", end_date="", payment_terms_days="")
    data.update(values)
    return data


LINE = dict(description="Subscription", quantity="1", unit_price="49.00", vat_rate="19.45")


@pytest.fixture
def entity(db_session):
    entity = make_entity()
    add_tax_code(entity, "DE_VAT_19_45", "19.45")  # the walkthrough's rate, which LINE gives bare
    db.session.commit()
    return entity


# ------------------------------------------------------------------ customers
def test_create_customer_normalises_and_audits(entity):
    customer = customer_service.create_customer(entity, customer_data(
        payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M-1", mandate_date="2026-01-15"), ME)
    db.session.commit()
    assert (customer.name, customer.email, customer.vat_id) == ("Bolt", "ap@bolt.example", "EE102090374")
    assert customer.postal_address.printed_lines("DE") == ["Vana-Lõuna 15", "10134 Tallinn", "Estonia"]
    assert (customer.iban, customer.mandate_date) == ("DE89370400440532013000", date(2026, 1, 15))
    [entry] = audit("customer.created")
    assert (entry.subject_id, entry.actor_label, entry.legal_entity_id) == (customer.id, ME.label, entity.id)


# (form values, field, the importer's column for the same value or None when only the form has the field)
BAD_CUSTOMERS = [
    (dict(name="  "), "name", "customer name is required", None),
    (dict(email="not-an-email"), "email", None, ("customer_email", dict(customer_email="not-an-email"))),
    (dict(vat_id="123"), "vat_id", None, ("customer_vat_id", dict(customer_vat_id="123"))),
    (dict(vat_id="EE102090375"), "vat_id", None, ("customer_vat_id", dict(customer_vat_id="EE102090375"))),
    (dict(vat_id="T5835678256246"), "vat_id", None, ("customer_vat_id", dict(customer_vat_id="T5835678256246"))),
    (dict(country="XX"), "country", None, ("customer_country", dict(customer_country="XX"))),
    (dict(postcode="10134\x07"), "postcode", None, ("customer_postcode", dict(customer_postcode="10134\x07"))),
    (dict(city=""), "city", None, ("customer_city", dict(customer_address_line1="Vana-Lõuna 15", customer_postcode="10134",
                                                     customer_country="EE"))),
    (dict(email="", buyer_reference="04011000-12345-34"), "email",
     "a customer with a buyer reference gets XRechnung invoices, which need the customer's e-mail", None),
    (dict(payment_method="cash"), "payment_method", None, ("payment_method", dict(payment_method="cash"))),
    (dict(payment_method="sepa_debit", mandate_reference="M", mandate_date="2026-01-01"), "iban", None,
     ("iban", dict(payment_method="sepa_debit", mandate_reference="M", mandate_date="2026-01-01"))),
    (dict(payment_method="sepa_debit", iban="DE89370400440532013001", mandate_reference="M", mandate_date="2026-01-01"),
     "iban", None, ("iban", dict(payment_method="sepa_debit", iban="DE89370400440532013001", mandate_reference="M",
                                 mandate_date="2026-01-01"))),
    (dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_date="2026-01-01"), "mandate_reference", None,
     ("mandate_reference", dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_date="2026-01-01"))),
    (dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M"), "mandate_date", None,
     ("mandate_date", dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M"))),
    (dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M", mandate_date="15.01.2026"),
     "mandate_date", None, ("mandate_date", dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M",
                                                 mandate_date="15.01.2026"))),
    (dict(payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M" * 36, mandate_date="2026-01-01"),
     "mandate_reference", "mandate reference is 36 characters long; at most 35 fit", None),
]


@pytest.mark.parametrize("values, field, expected, importer", BAD_CUSTOMERS,
                         ids=[f"{case[1]}-{i}" for i, case in enumerate(BAD_CUSTOMERS)])
def test_invalid_customer_is_refused_with_the_importers_message(entity, values, field, expected, importer):
    if importer is not None:
        expected = importer_message(importer[0], **importer[1])
    with pytest.raises(ValidationError) as error:
        customer_service.create_customer(entity, customer_data(**values), ME)
    db.session.rollback()
    assert error.value.errors[field].startswith(expected), error.value.errors
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
    assert audit("customer.created") == []


def test_customer_names_are_unique_per_entity(entity):
    customer_service.create_customer(entity, customer_data(), ME)
    with pytest.raises(ValidationError) as error:
        customer_service.create_customer(entity, customer_data(email=""), ME)
    assert error.value.errors["name"] == "a customer named Bolt already exists in DE01"
    other = make_entity("FR01", country="FR")
    assert customer_service.create_customer(other, customer_data(), ME).legal_entity_id == other.id


def test_update_customer_audits_each_change_old_to_new(entity):
    customer = customer_service.create_customer(entity, customer_data(), ME)
    customer_service.create_customer(entity, customer_data(name="Starship Technologies"), ME)
    with pytest.raises(ValidationError) as error:
        customer_service.update_customer(customer, customer_data(name="Starship Technologies"), ME)
    assert "already exists" in error.value.errors["name"]
    changes = customer_service.update_customer(customer, customer_data(
        email="billing@bolt.example", payment_method="sepa_debit", iban=GOOD_IBAN, mandate_reference="M-2",
        mandate_date="2026-02-01"), ME)
    db.session.commit()
    assert changes["email"] == ["ap@bolt.example", "billing@bolt.example"]
    assert changes["payment_method"] == ["manual", "sepa_debit"]
    assert changes["iban"] == [None, "…3000"]  # the audit names the account without repeating it
    [entry] = audit("customer.updated")
    assert entry.details["changes"]["mandate_date"] == [None, "2026-02-01"] and entry.actor_label == ME.label
    assert customer_service.update_customer(customer, customer_service.form_values(customer), ME) == {}
    assert len(audit("customer.updated")) == 1  # nothing changed, nothing audited


# ------------------------------------------------------------------ contracts
@pytest.fixture
def bolt(entity):
    customer = customer_service.create_customer(entity, customer_data(), ME)
    db.session.commit()
    return customer


def test_create_contract_ignores_blank_rows_and_audits(entity, bolt):
    blank = dict(description="", quantity=" ", unit_price="", vat_rate="")
    contract = contract_service.create_contract(entity, contract_data(bolt, payment_terms_days="30"), [
        LINE, blank, dict(description="Support", quantity="2.5", unit_price="80", vat_rate="7")], ME)
    db.session.commit()
    assert (contract.status, contract.frequency, contract.payment_terms_days) == ("active", "monthly", 30)
    assert [(l.position, l.description, l.quantity, l.vat_rate) for l in contract.lines] == [
        (1, "Subscription", Decimal("1"), Decimal("19.45")), (2, "Support", Decimal("2.5"), Decimal("7"))]
    [entry] = audit("contract.created")
    assert entry.details["lines"] == ["Subscription: 1 × 49 at 19.45% (DE_VAT_19_45)",
                                      "Support: 2.5 × 80 at 7% (DE_VAT_7)"]


BAD_CONTRACTS = [
    (dict(reference=""), "reference", ("contract_ref", dict(contract_ref=""))),
    (dict(reference="R" * 81), "reference", ("contract_ref", dict(contract_ref="R" * 81))),
    (dict(currency="EUX"), "currency", ("currency", dict(currency="EUX"))),
    (dict(frequency="fortnightly"), "frequency", ("frequency", dict(frequency="fortnightly"))),
    (dict(start_date="2026-02-30"), "start_date", ("start_date", dict(start_date="2026-02-30"))),
    (dict(end_date="2025-12-31", start_date="2026-01-01"), "end_date",
     ("end_date", dict(end_date="2025-12-31", start_date="2026-01-01"))),
    (dict(currency=""), "currency", "currency is required"),
    (dict(start_date=""), "start_date", "start date is required"),
    (dict(payment_terms_days="two weeks"), "payment_terms_days", "'two weeks' is not a whole number of days"),
    (dict(payment_terms_days="400"), "payment_terms_days", "400 is outside 0-365 days"),
    (dict(customer_id="99999"), "customer_id", "choose a customer of DE01"),
]


@pytest.mark.parametrize("values, field, expected", BAD_CONTRACTS, ids=[c[1] + str(i) for i, c in enumerate(BAD_CONTRACTS)])
def test_invalid_contract_fields_are_refused_with_the_importers_message(entity, bolt, values, field, expected):
    if isinstance(expected, tuple):
        expected = importer_message(expected[0], **expected[1])
    with pytest.raises(ValidationError) as error:
        contract_service.create_contract(entity, contract_data(bolt, **values), [LINE], ME)
    db.session.rollback()
    assert error.value.errors[field].startswith(expected), error.value.errors
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


BAD_LINES = [
    (dict(description=""), "description", "description is required"),
    (dict(quantity="one"), "quantity", ("quantity", dict(quantity="one"))),
    (dict(quantity="-1"), "quantity", ("quantity", dict(quantity="-1"))),
    (dict(unit_price="-0.01"), "unit_price", ("unit_price", dict(unit_price="-0.01"))),
    # Numbers larger than their Numeric column: "numeric field overflow" on PostgreSQL before.
    (dict(quantity="100000000000000"), "quantity", ("quantity", dict(quantity="100000000000000"))),
    (dict(unit_price="1000000000000"), "unit_price", ("unit_price", dict(unit_price="1000000000000"))),
    (dict(vat_rate="100.5"), "vat_rate", ("tax_rate", dict(tax_rate="100.5"))),
    (dict(vat_rate=""), "vat_rate", "VAT rate is required"),
    (dict(quantity=" "), "quantity", "quantity is required"),
]


@pytest.mark.parametrize("values, field, expected", BAD_LINES, ids=[c[1] + str(i) for i, c in enumerate(BAD_LINES)])
def test_line_errors_are_keyed_by_row_and_field(entity, bolt, values, field, expected):
    if isinstance(expected, tuple):
        expected = importer_message(expected[0], **expected[1])
    with pytest.raises(ValidationError) as error:
        contract_service.create_contract(entity, contract_data(bolt), [LINE, {**LINE, **values}], ME)
    assert error.value.errors == {f"lines-2-{field}": error.value.errors[f"lines-2-{field}"]}
    assert error.value.errors[f"lines-2-{field}"].startswith(expected)


def test_a_contract_needs_a_line_and_a_unique_reference(entity, bolt):
    with pytest.raises(ValidationError) as error:
        contract_service.create_contract(entity, contract_data(bolt), [dict(description="", quantity="")], ME)
    assert "at least one line" in error.value.errors["lines"]
    contract_service.create_contract(entity, contract_data(bolt), [LINE], ME)
    with pytest.raises(ValidationError) as error:
        contract_service.create_contract(entity, contract_data(bolt), [LINE], ME)
    assert error.value.errors["reference"] == importer_message("contract_ref", contract_ref="C-1")


def test_update_contract_changes_fields_and_lines_and_audits(entity, bolt):
    contract = contract_service.create_contract(entity, contract_data(bolt), [LINE, {**LINE, "description": "Extra"}], ME)
    db.session.commit()
    data, _lines = contract_service.form_values(contract)
    changes = contract_service.update_contract(contract, {**data, "reference": "C-1b", "frequency": "quarterly"},
                                               [{**LINE, "unit_price": "59"}], ME)
    db.session.commit()
    assert contract.reference == "C-1b" and contract.frequency == "quarterly"
    assert [(l.position, l.unit_price) for l in contract.lines] == [(1, Decimal("59"))]
    assert changes["frequency"] == ["monthly", "quarterly"]
    assert changes["lines"][1] == ["Subscription: 1 × 59 at 19.45% (DE_VAT_19_45)"]
    [entry] = audit("contract.updated")
    assert entry.details["changes"]["reference"] == ["C-1", "C-1b"] and entry.actor_label == ME.label


def run_inline(entity, as_of):
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    assert result.started, result.message
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return result.run


def set_auto_post(value: bool):
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, "auto_post": value}
    db.session.commit()


def test_start_frequency_and_currency_are_fixed_once_invoiced(entity):
    contract = make_contract(entity, "C-1", start=date(2026, 1, 1))
    db.session.commit()
    run_inline(entity, date(2026, 2, 15))
    data, lines = contract_service.form_values(contract)
    changed = {**data, "start_date": "2026-01-15", "frequency": "weekly", "currency": "USD"}
    with pytest.raises(ValidationError) as error:
        contract_service.update_contract(contract, changed, lines, ME)
    db.session.rollback()
    for field in ("start_date", "frequency", "currency"):
        assert "already has 2 invoice(s)" in error.value.errors[field]
    assert error.value.errors["start_date"].startswith("the start date cannot change")
    # Other edits stay possible: new prices apply to the periods billed from now on.
    contract_service.update_contract(contract, {**data, "reference": "C-1-new"}, [{**lines[0], "unit_price": "55"}], ME)
    db.session.commit()
    assert contract.reference == "C-1-new" and contract.start_date == date(2026, 1, 1)


def test_pause_resume_end_are_audited_and_refused_when_they_make_no_sense(entity):
    contract = make_contract(entity, "C-1", start=date(2026, 1, 1))
    contract_service.pause_contract(contract, ME)
    assert contract.status == "paused"
    with pytest.raises(ValidationError, match="only an active contract can be paused"):
        contract_service.pause_contract(contract, ME)
    contract_service.resume_contract(contract, ME)
    assert contract.status == "active"
    with pytest.raises(ValidationError, match="only a paused contract can be resumed"):
        contract_service.resume_contract(contract, ME)
    contract_service.end_contract(contract, "2026-06-30", ME)
    db.session.commit()
    assert (contract.status, contract.end_date) == ("ended", date(2026, 6, 30))
    with pytest.raises(ValidationError, match="has ended and cannot be resumed"):
        contract_service.resume_contract(contract, ME)
    assert [a.action for a in db.session.scalars(select(AuditEntry).where(AuditEntry.subject_type == "contract")
                                                 .order_by(AuditEntry.id))] == [
        "contract.paused", "contract.resumed", "contract.ended"]
    assert all(a.actor_label == ME.label for a in audit("contract.ended"))


def test_end_date_before_the_last_billed_period_is_refused(entity):
    contract = make_contract(entity, "C-1", start=date(2026, 1, 1))
    db.session.commit()
    run_inline(entity, date(2026, 3, 5))  # bills Jan, Feb, Mar
    with pytest.raises(ValidationError) as error:
        contract_service.end_contract(contract, "2026-02-28", ME)
    assert error.value.errors["end_date"] == (
        "2026-02-28 is before the start of the last billed period (2026-03-01, invoice DE01-2026-000003): "
        "choose 2026-03-01 or later")
    with pytest.raises(ValidationError, match="is not a date"):
        contract_service.end_contract(contract, "soon", ME)
    with pytest.raises(ValidationError, match="before the contract's start date"):
        contract_service.end_contract(make_contract(entity, "C-2", start=date(2026, 5, 1)), date(2026, 4, 1), ME)
    contract_service.end_contract(contract, date(2026, 3, 1), ME)
    assert contract.status == "ended"


def test_upcoming_periods_follow_the_last_billed_one(entity):
    contract = make_contract(entity, "C-1", start=date(2026, 1, 31))
    db.session.commit()
    assert [u.period.start for u in contract_service.upcoming_periods(contract, date(2026, 1, 1))][:2] == [
        date(2026, 1, 31), date(2026, 2, 28)]
    run_inline(entity, date(2026, 2, 28))
    upcoming = contract_service.upcoming_periods(contract, date(2026, 4, 1))
    assert [u.period.start for u in upcoming] == [date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31),
                                                  date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31)]
    assert [u.due for u in upcoming[:2]] == [True, False]


# ------------------------------------------------------------------ invoices
@pytest.fixture
def drafts(entity):
    set_auto_post(False)
    make_contract(entity, "C-1", start=date(2026, 10, 1), customer="Bolt")
    make_contract(entity, "C-2", start=date(2026, 11, 1), customer="Starship Technologies")
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    found = list(db.session.scalars(select(Invoice).order_by(Invoice.contract_id, Invoice.period_start)))
    assert len(found) == 3 and all(i.status == "draft" and i.number is None for i in found)
    return found


def test_posting_a_draft_gives_the_next_gapless_number(entity, drafts):
    first = invoice_service.post_invoice(drafts[2], ME)
    db.session.commit()
    second = invoice_service.post_invoice(drafts[0], ME)
    db.session.commit()
    assert (first.number, second.number) == ("DE01-2026-000001", "DE01-2026-000002")
    assert (first.status, first.sequence_number) == ("issued", 1)
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "invoice.issued")) == 2
    assert [a.details["number"] for a in audit("invoice.posted")] == ["DE01-2026-000001", "DE01-2026-000002"]
    with pytest.raises(ValidationError, match="issued as DE01-2026-000001 already"):
        invoice_service.post_invoice(first, ME)
    history = invoice_service.invoice_history(first)
    assert [h.text for h in history] == ["created as a draft by billing run #1", "posted as DE01-2026-000001"]


def test_an_issued_invoice_is_credited_not_voided_and_keeps_its_number(entity, drafts):
    from app.records.credit_notes import CreditRequest, credit_invoice

    invoice = invoice_service.post_invoice(drafts[0], ME)
    db.session.commit()
    with pytest.raises(ValidationError) as error:
        credit_invoice(invoice, CreditRequest("  "), ME)
    assert error.value.errors["reason"].startswith("a reason is required")
    db.session.rollback()
    note = credit_invoice(invoice, CreditRequest("Duplicate of a manual invoice"), ME)
    db.session.commit()
    db.session.expire_all()
    assert (invoice.status, invoice.number, invoice.amount_due) == ("credited", "DE01-2026-000001", Decimal("0"))
    assert invoice.total_amount == Decimal("58.53") and note.credit_reason == "Duplicate of a manual invoice"
    [entry] = audit("invoice.credited")
    assert entry.details["credit_note"] == note.number and entry.details["amount_due_before"] == "58.53"
    # The number stays used: the next posting continues after it.
    assert invoice_service.post_invoice(drafts[1], ME).number == "DE01-2026-000002"
    assert [h.text for h in invoice_service.invoice_history(invoice)][-1] == (
        f"credited by {note.number} (58,53\xa0€): Duplicate of a manual invoice")  # in the entity's locale


def test_drafts_and_void_invoices_are_not_credited(entity, drafts):
    from app.records.credit_notes import CreditRequest, credit_invoice

    with pytest.raises(ValidationError, match="a draft has no number yet"):
        credit_invoice(drafts[0], CreditRequest("wrong"), ME)
    db.session.rollback()
    voided = invoice_service.post_invoice(drafts[1], ME)
    voided.status, voided.amount_due, voided.void_reason = "void", Decimal(0), "voided before credit notes"
    db.session.commit()
    with pytest.raises(ValidationError, match="is void"):
        credit_invoice(voided, CreditRequest("again"), ME)
    db.session.rollback()
    assert db.session.get(Invoice, voided.id).status == "void" and audit("invoice.credited") == []


def test_vat_summary_is_per_rate_rounded_half_up(entity):
    # Per line, 10 % of 1.05 would be 0.11 three times (0.33); per rate it is 10 % of 3.15 = 0.315 → 0.32.
    make_contract(entity, "C-1", start=date(2026, 11, 1), lines=[
        ("A", "1", "1.05", "10"), ("B", "1", "1.05", "10"), ("C", "3", "0.333333", "7"), ("D", "1", "1.05", "10")])
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    invoice = db.session.scalar(select(Invoice))
    vat = invoice_service.vat_summary(invoice)
    assert [(s.rate, s.taxable, s.tax) for s in vat] == [
        (Decimal("7"), Decimal("1.00"), Decimal("0.07")), (Decimal("10"), Decimal("3.15"), Decimal("0.32"))]
    assert sum(s.tax for s in vat) == invoice.tax_amount
    assert invoice_service.invoice_history(invoice)[0].text == f"created and posted as {invoice.number} by billing run #1"


def test_invoice_filters_and_totals_per_currency(entity):
    make_contract(entity, "EUR-1", start=date(2026, 9, 1), customer="Bolt")
    make_contract(entity, "USD-1", start=date(2026, 11, 1), currency="USD", customer="Starship Technologies",
                  lines=[("Licence", "1", "100", "0")])
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    everything = invoice_service.InvoiceFilters()
    totals = {t.currency: (t.count, t.total) for t in invoice_service.invoice_totals(entity, everything)}
    assert totals == {"EUR": (3, Decimal("175.59")), "USD": (1, Decimal("100.00"))}
    overdue = invoice_service.InvoiceFilters(overdue=True)
    # Due 14 days after 2026-11-26: overdue from 2026-12-11 on.
    assert invoice_service.invoice_totals(entity, overdue, today=date(2026, 12, 10)) == []
    assert [t.count for t in invoice_service.invoice_totals(entity, overdue, today=date(2026, 12, 11))] == [3, 1]
    recent = invoice_service.InvoiceFilters.from_args({"period_from": "2026-10-15", "period_to": "bad"})
    assert recent.errors == {"period_to": "'bad' is not a date (use YYYY-MM-DD)"}
    rows = db.session.scalars(invoice_service.invoice_query(entity, recent)).all()
    assert sorted(i.period_start for i in rows) == [date(2026, 11, 1), date(2026, 11, 1)]
