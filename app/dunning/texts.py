"""The reminders' words: e-mail subject and text per level and language (the legal entity's locale decides).

The defaults are the Dunning Agent's settings (app/agents/builtin/dunning.py); admins change them under
Agents > Definitions. English and German are built in; another locale's entity writes in English.
"""
from __future__ import annotations

from app.records.validation import FieldError, one_line
from app.text import check_placeholders

LANGUAGES = ("en", "de")
# The title of each level, as the subject and the PDF's heading name it ("|" between levels).
DEFAULT_TITLES = {
    "en": "Payment reminder|Second reminder|Final reminder",
    "de": "Zahlungserinnerung|1. Mahnung|2. Mahnung",
}
DEFAULT_SUBJECTS = {
    "en": "{title} from {entity_name}: {total} overdue",
    "de": "{title} von {entity_name}: {total} überfällig",
}
DEFAULT_BODIES = {
    "en": (
        "Dear {customer_name},\n\nour records show that the following invoices are overdue:\n\n{invoices}\n\n"
        "Perhaps this has escaped your attention. Please pay {total} by {pay_by} to {iban}, quoting the "
        "invoice number or payment reference.\nIf you have paid in the meantime, please disregard this reminder.\n\n"
        "Kind regards,\n{entity_name}",
        "Dear {customer_name},\n\ndespite our reminder, the following invoices are still unpaid:\n\n{invoices}\n\n"
        "Please pay {total} (including a fee of {fee} and interest of {interest}) by {pay_by} to {iban}.\n\n"
        "Kind regards,\n{entity_name}",
        "Dear {customer_name},\n\nthe following invoices remain unpaid despite our reminders:\n\n{invoices}\n\n"
        "This is our final reminder. Please pay {total} (including a fee of {fee} and interest of {interest}) by "
        "{pay_by} to {iban}. Otherwise we will hand the claim over for collection without further notice.\n\n"
        "Kind regards,\n{entity_name}",
    ),
    "de": (
        "Sehr geehrte Damen und Herren ({customer_name}),\n\nnach unserer Buchhaltung sind folgende Rechnungen "
        "überfällig:\n\n{invoices}\n\nSicher haben Sie die Zahlung nur übersehen. Bitte überweisen Sie {total} bis "
        "zum {pay_by} auf das Konto {iban} unter Angabe der Rechnungsnummer oder Zahlungsreferenz.\nSollten Sie "
        "inzwischen gezahlt haben, betrachten Sie dieses Schreiben bitte als gegenstandslos.\n\n"
        "Mit freundlichen Grüßen\n{entity_name}",
        "Sehr geehrte Damen und Herren ({customer_name}),\n\ntrotz unserer Zahlungserinnerung sind folgende "
        "Rechnungen noch offen:\n\n{invoices}\n\nBitte überweisen Sie {total} (einschließlich Mahngebühr {fee} und "
        "Verzugszinsen {interest}) bis zum {pay_by} auf das Konto {iban}.\n\nMit freundlichen Grüßen\n{entity_name}",
        "Sehr geehrte Damen und Herren ({customer_name}),\n\ntrotz unserer Mahnungen sind folgende Rechnungen "
        "weiterhin offen:\n\n{invoices}\n\nDies ist unsere letzte Mahnung. Bitte überweisen Sie {total} "
        "(einschließlich Mahngebühr {fee} und Verzugszinsen {interest}) bis zum {pay_by} auf das Konto {iban}. "
        "Andernfalls übergeben wir die Forderung ohne weitere Ankündigung an ein Inkassounternehmen.\n\n"
        "Mit freundlichen Grüßen\n{entity_name}",
    ),
}
PLACEHOLDERS = ("customer_name", "entity_name", "title", "level", "invoices", "open_amount", "fee", "interest",
                "total", "as_of", "pay_by", "iban", "bic")
# The PDF's and the CLI's fixed words, per language.
WORDS = {
    "en": {"invoice": "Invoice", "due_date": "Due date", "days": "Days overdue", "open": "Open amount",
           "interest": "Interest", "fee": "Reminder fee", "total": "Total to pay", "sum": "Overdue invoices",
           "date": "Date", "reference": "Payment reference", "pay_to": "Please pay to", "rate": "Statutory interest",
           "per_year": "per year", "account_holder": "Account holder", "pay_by": "Please pay by"},
    "de": {"invoice": "Rechnung", "due_date": "Fällig am", "days": "Tage überfällig", "open": "Offener Betrag",
           "interest": "Zinsen", "fee": "Mahngebühr", "total": "Zu zahlen", "sum": "Überfällige Rechnungen",
           "date": "Datum", "reference": "Zahlungsreferenz", "pay_to": "Bitte überweisen Sie an",
           "rate": "Verzugszinsen", "per_year": "p. a.", "account_holder": "Kontoinhaber",
           "pay_by": "Zahlbar bis"},
}


def language_of(locale: str | None) -> str:
    """'de' for de_DE / de_AT / de_CH, else 'en'."""
    language = (locale or "en").split("_")[0].split("-")[0].lower()
    return language if language in LANGUAGES else "en"


def check_template(template: str) -> None:
    """Refuse unknown {placeholders} and stray braces, naming the problem (a Setting validator)."""
    check_placeholders(template, PLACEHOLDERS)


def check_subject(template: str) -> None:
    """A subject is one header line (a line break would break the e-mail's headers), with the placeholders."""
    try:
        one_line(template, "the subject")
    except FieldError as error:
        raise ValueError(str(error)) from None
    check_template(template)


def check_titles(text: str) -> None:
    titles = [t.strip() for t in text.split("|")]
    if not all(titles):
        raise ValueError("write one title per level, separated by |, e.g. Payment reminder|Second reminder|Final "
                         "reminder")
    check_subject(text)


def level_title(titles: str, level: int) -> str:
    """The title of `level` (1-based); levels beyond the titles given take the last one."""
    parts = [t.strip() for t in titles.split("|") if t.strip()]
    return parts[min(level, len(parts)) - 1]


def setting_name(kind: str, language: str, level: int | None = None) -> str:
    """The agent setting holding a text: subject_de, titles_en, body_de_2."""
    return f"{kind}_{language}" if level is None else f"{kind}_{language}_{level}"


def body_for(configuration: dict, language: str, level: int) -> str:
    """The level's e-mail text; a level beyond the three texts takes the third."""
    return configuration[setting_name("body", language, min(level, len(DEFAULT_BODIES[language])))]
