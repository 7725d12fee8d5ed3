"""The reminder PDF: the overdue invoices a reminder lists, their open amounts, the fee, the interest and the total
to pay, with the legal entity's bank details and each invoice's payment reference as the invoice shows them.

Rendered like the invoice (app/documents/pdf.py): the app's Jinja environment without a request, money by
app/formatting.py in the entity's locale, WeasyPrint with nothing fetched. A plain PDF (a reminder carries no
e-invoice).
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from app.billing.references import format_creditor_reference
from app.documents.facts import group_iban
from app.dunning.texts import WORDS, language_of, level_title, setting_name
from app.formatting import format_money, format_percent
from app.locale_input import input_date
from app.models import DunningNotice

TEMPLATE, STYLESHEET = "documents/reminder.html", "documents/reminder.css"


def notice_context(notice: DunningNotice, configuration: dict | None = None) -> dict:
    from app.dunning.service import PAY_WITHIN_DAYS, settings

    config = configuration or settings()
    entity, customer = notice.legal_entity, notice.customer
    locale, language = entity.locale or "en_US", language_of(entity.locale)

    def money(amount):
        return format_money(amount, notice.currency, locale)

    return {
        "notice": notice, "entity": entity, "customer": customer, "lang": locale.replace("_", "-"),
        "words": WORDS[language],
        "title": level_title(config[setting_name("titles", language)], notice.level),
        "date": input_date(notice.as_of, locale),
        "pay_by": input_date(notice.as_of + timedelta(days=PAY_WITHIN_DAYS), locale),
        "entity_address": entity.postal_address.printed_lines(home_country=entity.country),
        "customer_address": customer.postal_address.printed_lines(home_country=entity.country),
        "items": [{"number": item.invoice.number, "due_date": input_date(item.invoice.due_date, locale),
                   "days": item.days_past_due, "open": money(item.open_amount), "interest": money(item.interest),
                   "reference": format_creditor_reference(item.invoice.creditor_reference)
                   if item.invoice.creditor_reference else ""} for item in notice.items],
        "open_amount": money(notice.open_amount), "fee": money(notice.fee), "interest": money(notice.interest),
        "total": money(notice.total_amount),
        "rate": format_percent(entity.late_interest_rate, locale) if entity.late_interest_rate is not None else None,
        "iban": group_iban(entity.iban), "bic": entity.bic,
    }


def render_notice_html(notice: DunningNotice) -> str:
    return current_app.jinja_env.get_template(TEMPLATE).render(notice_context(notice))


def render_notice_pdf(notice: DunningNotice) -> bytes:
    from weasyprint import CSS, HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"})  # nothing is fetched from the network or disk
    source, _filename, _uptodate = current_app.jinja_env.loader.get_source(current_app.jinja_env, STYLESHEET)
    html = HTML(string=render_notice_html(notice), url_fetcher=fetcher)
    return html.write_pdf(stylesheets=[CSS(string=source, url_fetcher=fetcher)])
