"""The Reconciliation Agent's rules, on plain values: which invoices a credit pays, and when it must wait."""
from datetime import date
from decimal import Decimal as D

from app.billing.references import creditor_reference, reference_body
from app.payments.matching import Book, Credit, KnownInvoice, normalized_name


def invoice(n, customer=1, due="58.53", status="issued", currency="EUR", day=10):
    number = f"DE01-2026-{n:06d}"
    return KnownInvoice(n, number, customer, currency, status, D(due), date(2026, 12, day), reference_body(number))


def book(*invoices, ibans=None, names=None):
    return Book({i.id: i for i in invoices}, ibans or {}, names or {})


def credit(amount, reference=None, text="", name=None, iban=None, currency="EUR"):
    return Credit(D(amount), currency, reference, text, name, iban)


def test_a_reference_wins_over_a_number_in_the_text_and_a_bad_check_digit_is_no_reference():
    b = book(invoice(1), invoice(2))
    match = b.match(credit("58.53", creditor_reference("DE01-2026-000001"), text="DE01-2026-000002"))
    assert (match.rule, [a.invoice_id for a in match.allocations]) == ("creditor_reference", [1])
    wrong = "RF00DE012026000001"  # wrong check digits: not taken as a reference, the text decides
    match = b.match(credit("58.53", wrong, text="Rechnung DE01 2026 2"))
    assert (match.rule, [a.invoice_id for a in match.allocations]) == ("invoice_number", [2])


def test_invoice_numbers_written_as_people_write_them():
    b = book(invoice(123))
    for text in ("DE01-2026-000123", "de01 2026 000123", "DE012026000123", "Re: DE01/2026/123 danke"):
        assert [a.invoice_id for a in b.match(credit("58.53", text=text)).allocations] == [123], text
    assert b.match(credit("58.53", text="XDE01-2026-000123")).rule is None  # glued to another word


def test_several_invoices_oldest_first_short_and_over_payments():
    b = book(invoice(1, day=20), invoice(2, day=5))
    short = b.match(credit("70.00", text="DE01-2026-000001 DE01-2026-000002"))
    assert [(a.invoice_id, a.amount) for a in short.allocations] == [(2, D("58.53")), (1, D("11.47"))]
    over = b.match(credit("120.00", text="DE01-2026-000001 DE01-2026-000002"))
    assert over.credit_customer_id == 1 and over.credit_amount == D("2.94")
    kept = b.match(credit("120.00", text="DE01-2026-000001 DE01-2026-000002"), overpayment_to_credit=False)
    assert kept.credit_amount == 0 and "waits for an accountant" in kept.note


def test_a_paid_or_foreign_currency_invoice_is_not_guessed_around():
    b = book(invoice(1, status="paid", due="0"), invoice(2, currency="CHF"), invoice(3, customer=2))
    assert "is paid already" in b.match(credit("58.53", text="DE01-2026-000001")).note
    assert "billed in CHF" in b.match(credit("58.53", text="DE01-2026-000002")).note
    mixed = b.match(credit("117.06", text="DE01-2026-000001 DE01-2026-000003"))
    assert [a.invoice_id for a in mixed.allocations] == [3] and mixed.credit_amount == 0  # the rest waits


def test_amount_and_payer_only_when_certain():
    b = book(invoice(1, due="58.53"), invoice(2, due="10.00"), invoice(3, customer=2, due="58.53"),
             invoice(4, customer=2, due="58.53"),
             ibans={"DE89370400440532013000": {1}}, names={"acme tools": {1}, "bolt": {2}})
    assert [a.invoice_id for a in b.match(credit("58.53", iban="DE89 3704 0044 0532 0130 00")).allocations] == [1]
    assert [a.invoice_id for a in b.match(credit("68.53", name="ACME Tools GmbH")).allocations] == [1, 2]
    assert "2 open invoices of this amount" in b.match(credit("58.53", name="Bolt")).note
    assert b.match(credit("58.53", name="Acme Tools"), match_by_payer=False).rule is None
    assert b.match(credit("12.00", name="Acme Tools")).rule is None


def test_names_compare_without_case_accents_and_legal_form():
    assert normalized_name("Müller & Söhne GmbH & Co. KG") == normalized_name("MULLER SOHNE")
