"""The invoice PDF: HTML (Jinja) → PDF/A-3b with the e-invoice XML embedded, by WeasyPrint (pdfa.py).

Rendered in workers (an app context, no request): the template uses no `url_for`, no `request`,
no context processor and no network; its stylesheet is parsed once per thread and the fonts are
the locally installed Liberation Sans, then DejaVu Sans and Noto Sans CJK JP for the characters it lacks
(invoice.css); a character none of them has fails the render (glyphs.py).
Money is formatted with Babel in the legal entity's locale (58,53 € for de_DE). bench/render.py measures it; the comments below say what made it faster.
"""
from __future__ import annotations

import atexit
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from flask import current_app

from app.billing.money import round_money
from app.billing.references import format_creditor_reference
from app.billing.vat import TaxTreatment
from app.documents.einvoice import build_cii_xml, payment_terms_text
from app.documents.facts import (
    POSTED_STATUSES,
    buyer_address,
    checked_amounts,
    group_iban,
    mask_iban,
    payment_kind,
)
from app.documents.glyphs import check_printable
from app.errors import DocumentError
from app.formatting import format_money, format_number, format_unit_price
from app.formatting import format_percent as percent  # 19,45 % (de_DE), as on the pages and in e-mails
from app.models import Invoice

TEMPLATE, STYLESHEET = "documents/invoice.html", "documents/invoice.css"
_BETWEEN_TAGS = re.compile(r">\s*\n\s*<")


@dataclass
class RenderTimings:
    """Seconds spent per step, summed over the renders given it (for bench/render.py)."""

    xml: float = 0.0
    html: float = 0.0
    layout: float = 0.0  # WeasyPrint: parse, style, lay out
    pdf: float = 0.0  # WeasyPrint: draw and write the PDF/A-3b with the XML and XMP (pdfa.py)


def render_pdf(invoice: Invoice, xml: bytes | None = None, timings: RenderTimings | None = None) -> bytes:
    """The invoice as a PDF/A-3b with its EN 16931 XML embedded as factur-x.xml.

    `xml` is the output of `build_cii_xml(invoice)` (XSD-checked) when the caller has it already.
    """
    if invoice.status not in POSTED_STATUSES or not invoice.number:
        raise DocumentError("invoice is a draft: post it first")
    clock = time.perf_counter
    started = clock()
    if xml is None:
        xml = build_cii_xml(invoice)
    after_xml = clock()
    html = render_document_html(invoice)
    check_printable(invoice, html)  # a character no font has would print as an empty box
    after_html = clock()
    document = _layout(html)
    after_layout = clock()
    from app.documents.pdfa import write_facturx_pdf  # imports WeasyPrint: not for every `flask` command

    pdf = write_facturx_pdf(document, xml)
    if timings is not None:
        timings.xml += after_xml - started
        timings.html += after_html - after_xml
        timings.layout += after_layout - after_html
        timings.pdf += clock() - after_layout
    return pdf


# ------------------------------------------------------------------ what the template shows
def render_document_html(invoice: Invoice) -> str:
    """The invoice as HTML, with the app's Jinja environment (autoescaped).

    Not `flask.render_template`: the app's context processors read `current_user`, which does
    not exist in a worker (no request); the document needs nothing from them.
    """
    html = current_app.jinja_env.get_template(TEMPLATE).render(document_context(invoice))
    # Indentation between tags only makes whitespace boxes for WeasyPrint to lay out.
    return _BETWEEN_TAGS.sub("><", html)


def document_context(invoice: Invoice) -> dict:
    entity, customer = invoice.legal_entity, invoice.customer
    amounts = checked_amounts(invoice)
    locale = entity.locale or "en_US"
    money = _money_formatter(invoice.currency, locale)
    kind = payment_kind(invoice)
    entity_address = entity.postal_address.printed_lines(home_country=entity.country)
    total = money(amounts.total)
    due = invoice.due_date.isoformat()
    payment: dict = {"kind": kind, "terms": payment_terms_text(invoice)}
    if invoice.creditor_reference:
        payment["reference"] = format_creditor_reference(invoice.creditor_reference)
    if kind == "debit":
        payment.update(
            mandate=customer.mandate_reference,
            mandate_date=customer.mandate_date.isoformat() if customer.mandate_date else None,
            creditor_id=entity.sepa_creditor_id,
            account=mask_iban(customer.iban),
            notice=(f"We will debit {total} from your account {mask_iban(customer.iban)} on or after {due} "
                    f"under mandate {customer.mandate_reference}."),
        )
    elif kind != "credit":
        payment.update(iban=group_iban(entity.iban), bic=entity.bic, holder=entity.name,
                       total=total, due=due)
    credited = invoice.credited_invoice if invoice.kind == "credit_note" else None
    title = "Credit note" if credited else "Invoice"
    return {
        "invoice": invoice,
        "title": title,
        "credited": credited,
        "entity": entity,
        "customer": customer,
        "lang": locale.replace("_", "-"),
        # the PDF's metadata (document information and XMP), read by WeasyPrint from the <head>
        "meta": {
            "subject": f"{title} {invoice.number} of {invoice.issue_date.isoformat()} from {entity.name} "
                       f"to {customer.name}" + (f", crediting invoice {credited.number}" if credited else ""),
            "keywords": f"{title}, Factur-X, EN 16931, {invoice.number}",
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "entity_address": entity_address,
        "customer_address": buyer_address(invoice).printed_lines(home_country=entity.country),
        "references": [(label, value) for label, value in (
            ("Your reference", customer.buyer_reference),
            ("Purchase order", invoice.contract.po_reference if invoice.contract else None)) if value],
        "footer": {
            "address": "\n".join(entity_address),
            "ids": "\n".join(text for text in (
                entity.vat_id and f"VAT ID {entity.vat_id}",
                entity.tax_number and f"Tax number {entity.tax_number}",
                entity.registration_id and f"Registration {entity.registration_id}",
                entity.sepa_creditor_id and f"Creditor ID {entity.sepa_creditor_id}",
                entity.finance_email) if text),
            "contact": "\n".join(text for text in (
                entity.contact_name, entity.contact_phone, entity.contact_email) if text),
            "bank": "\n".join(text for text in (
                entity.iban and f"IBAN {group_iban(entity.iban)}", entity.bic and f"BIC {entity.bic}") if text),
        },
        "lines": [
            {"position": line.position, "description": line.description,
             "quantity": format_number(line.quantity, locale),
             "unit_price": money(line.unit_price, exact=True), "vat": line_vat(computed.treatment, line.vat_rate, locale),
             "net": money(computed.net)}
            for line, computed in zip(invoice.lines, amounts.lines)
        ],
        "vat": [{"label": breakdown_label(s.treatment, s.rate, locale), "taxable": money(s.taxable),
                 "tax": money(s.tax)} for s in amounts.vat],
        "tax_notes": printed_tax_notes(amounts),
        "net": money(amounts.net),
        "tax": money(amounts.tax),
        "total": total,
        "payment": payment,
    }


# Symbols some locales use that the embedded fonts (Liberation Sans, DejaVu Sans) lack, and their
# narrow equivalents:
# ja_JP writes the yen as U+FFE5 FULLWIDTH YEN SIGN.
_FONT_SAFE = str.maketrans({"\uffe5": "\u00a5", "\uffe1": "\u00a3", "\uffe0": "\u00a2"})


def _money_formatter(currency: str, locale: str) -> Callable[..., str]:
    def money(amount: Decimal, exact: bool = False) -> str:
        """58,53 €; a unit price keeps its extra decimals (0,123456 €) when `exact` (app/formatting.py, as on
        the pages and in the e-mails)."""
        value = Decimal(amount)
        text = format_unit_price(value, currency, locale) if exact else format_money(round_money(value, currency),
                                                                                     currency, locale)
        return text.translate(_FONT_SAFE)

    return money


# How a VAT breakdown row names its category beside the rate (EN 16931 category names, shortened).
CATEGORY_LABELS = {"S": "", "Z": "zero rated", "E": "exempt", "AE": "reverse charge", "K": "intra-community supply",
                   "G": "export", "O": "not subject to VAT", "L": "IGIC", "M": "IPSI"}


def line_vat(treatment: TaxTreatment, rate: Decimal, locale: str) -> str:
    """A line's VAT column: 19 %, or 0 % AE for a category other than standard; O states no rate."""
    if treatment.category == "O":
        return "O"
    text = percent(rate, locale)
    return text if treatment.category == "S" else f"{text} {treatment.category}"


def breakdown_label(treatment: TaxTreatment, rate: Decimal, locale: str) -> str:
    """"VAT 19 %", "VAT 0 % reverse charge", "Not subject to VAT": a breakdown row, before "on <taxable>"."""
    if treatment.category == "O":
        return "Not subject to VAT"
    label = CATEGORY_LABELS.get(treatment.category, treatment.category)
    return f"VAT {percent(rate, locale)}" + (f" {label}" if label else "")


def printed_tax_notes(amounts) -> list[str]:
    """The tax codes' wording, and the exemption reason where it says more (the legal basis), each once."""
    notes: list[str] = []
    for subtotal in amounts.vat:
        treatment = subtotal.treatment
        for text in (treatment.note, treatment.reason):
            if text and not any(text in note for note in notes):
                notes.append(text)
    return notes




# ------------------------------------------------------------------ WeasyPrint
_local = threading.local()


@atexit.register
def _release_weasyprint() -> None:
    """Free the main thread's font configuration while Pango is still loaded.

    Left to the interpreter's final clean-up, its font map is unreferenced after the libraries
    have gone, and the process ends with a segmentation fault (exit status 139, after SIGTERM too).
    """
    vars(_local).clear()


def _weasyprint_setup():
    """The HTML class, parsed stylesheet, font configuration and URL fetcher, once per thread."""
    setup = getattr(_local, "setup", None)
    if setup is None:
        from xml.etree import ElementTree

        from cssselect2 import ElementWrapper
        from weasyprint import CSS, HTML
        from weasyprint.css.counters import CounterStyle
        from weasyprint.html import UA
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher

        # WeasyPrint's user-agent stylesheet without its universal pseudo-element rules (::marker,
        # ::footnote-*, ::note-*): they give every element six pseudo-element styles to compute,
        # a sixth of the rendering time, for lists and footnotes the invoice does not have.
        # Its @counter-style rules go to a scratch registry: documents use WeasyPrint's own one.
        lean_ua = CSS(string=_without_universal_pseudo_rules(UA), counter_style=CounterStyle())

        class InvoiceHTML(HTML):
            def __init__(self, string: str, url_fetcher: URLFetcher) -> None:
                # The template is well-formed XHTML: expat parses it in 0.1 ms where WeasyPrint's
                # HTML5 parser (tinyhtml5, pure Python) takes 7 ms. Text that XML does not allow
                # (a control character in a name) goes to the HTML parser, which copes.
                try:
                    root = ElementTree.fromstring(string)
                except ElementTree.ParseError:
                    super().__init__(string=string, url_fetcher=url_fetcher)
                    return
                self.base_url, self.url_fetcher, self.media_type = None, url_fetcher, "print"
                self.wrapper_element = ElementWrapper.from_html_root(root)
                self.etree_element = root

            def _ua_stylesheets(self, forms=False):
                return [lean_ua]

        fonts = FontConfiguration()
        fetcher = URLFetcher(allowed_protocols={"data"})  # nothing is fetched from the network or disk
        source, _filename, _uptodate = current_app.jinja_env.loader.get_source(current_app.jinja_env, STYLESHEET)
        css = CSS(string=source, font_config=fonts, url_fetcher=fetcher)
        setup = _local.setup = (InvoiceHTML, css, fonts, fetcher)
    return setup


_UNIVERSAL_PSEUDO_RULE = re.compile(r"^::[\w-]+\s*\{[^{}]*\}[ \t]*\n?", re.MULTILINE)


def _without_universal_pseudo_rules(stylesheet: str) -> str:
    """The stylesheet without its `::marker { ... }`-style rules (selector a bare pseudo-element)."""
    return _UNIVERSAL_PSEUDO_RULE.sub("", stylesheet)


def _layout(html: str):
    """The laid-out WeasyPrint Document of `html` (pdfa.py writes it)."""
    from app.documents.pdfa import PDF_VARIANT

    html_class, css, fonts, fetcher = _weasyprint_setup()
    return html_class(string=html, url_fetcher=fetcher).render(stylesheets=[css], font_config=fonts,
                                                               pdf_variant=PDF_VARIANT)
