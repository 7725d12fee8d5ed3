"""Warming a process up for invoice documents: what the first render would otherwise load.

The first render in a process costs 1-3 s (WeasyPrint's imports, Pango's fonts, the stylesheet,
the Jinja template, the XSD, Babel's locale data), and the first EN 16931 check 0.5 s more (Saxon
compiles the schematron). The worker calls `warm_up()` in its parent
process, before it forks work horses or runs jobs itself.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.billing.money import LineInput, compute_invoice
from app.models import Customer, Invoice, InvoiceLine, LegalEntity

SAMPLE_LOCALES = ("de_DE", "en_US")  # the demo entity's and the default one


def sample_invoice(locale: str = "en_US") -> Invoice:
    """A transient issued invoice (never added to a session) that uses what real ones use:
    regular and bold text, the entity's and customer's addresses, a SEPA mandate, two VAT rates."""
    entity = LegalEntity(code="WARM", name="Warm-up GmbH", country="DE", currency="EUR", vat_id="DE136695976",
                         address_line1="Friedrichstraße 68", postcode="10117", city="Berlin", invoice_prefix="W", locale=locale,
                         finance_email="finance@example.com", sepa_creditor_id="DE98ZZZ09999999999",
                         iban="DE89370400440532013000", bic="COBADEFFXXX")
    customer = Customer(name="Customer GmbH", email="ap@example.com", vat_id="DE811907980",
                        address_line1="Accounts payable", address_line2="Hauptstraße 1", postcode="10115",
                        city="Berlin", country="DE",
                        payment_method="sepa_debit", iban="DE02120300000000202051",
                        mandate_reference="MNDT-000001", mandate_date=date(2026, 1, 1))
    inputs = [LineInput("Subscription – ½ seat", Decimal("1.5"), Decimal("19.99"), Decimal("19")),
              LineInput("Handbook", Decimal("2"), Decimal("0.123456"), Decimal("7"))]
    amounts = compute_invoice(inputs, "EUR")
    lines = [InvoiceLine(position=n, description=i.description, quantity=i.quantity, unit_price=i.unit_price,
                         vat_rate=i.vat_rate, net_amount=computed.net, vat_category=computed.treatment.category)
             for n, (i, computed) in enumerate(zip(inputs, amounts.lines), start=1)]
    return Invoice(legal_entity=entity, customer=customer, lines=lines, number="W-2026-000001", status="issued",
                   currency="EUR", issue_date=date(2026, 11, 26), due_date=date(2026, 12, 10),
                   period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
                   net_amount=amounts.net, tax_amount=amounts.tax, total_amount=amounts.total,
                   amount_due=amounts.total)


def warm_up(locales: tuple[str, ...] = SAMPLE_LOCALES) -> None:
    """Render a sample invoice per locale (XML, XSD and schematron checks, HTML, PDF) and load Babel's country names.

    Needs an app context (the Jinja environment); touches no database.
    """
    from app.documents.einvoice import build_cii_xml
    from app.addresses import country_codes
    from app.documents.pdf import render_pdf
    from app.documents.validation import check_einvoice

    country_codes()  # from Babel's territory names
    for locale in locales:
        invoice = sample_invoice(locale)
        xml = build_cii_xml(invoice)
        check_einvoice(xml, "the warm-up sample")
        render_pdf(invoice, xml)
