"""The Dunning Agent: payment reminders by days past due, with a PDF of the overdue invoices, a fee per level and
statutory interest where the legal entity sets a rate (app/dunning). Scheduled daily, or run on demand; a test
run shows who would get which level and sends nothing. The preview page is /dunning."""
from __future__ import annotations

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.dunning import service
from app.dunning.levels import parse_level_fees
from app.dunning.texts import (DEFAULT_BODIES, DEFAULT_SUBJECTS, DEFAULT_TITLES, LANGUAGES, PLACEHOLDERS,
                               check_subject, check_template, check_titles, setting_name)
from app.queues import DELIVERY_TIMEOUT

LANGUAGE_NAMES = {"en": "English", "de": "German"}


def check_fees(text: str) -> None:
    parse_level_fees(text)


def run(request: RunRequest) -> RunOutcome:
    as_of = request.as_of or request.entity.today()
    if request.test:
        plan = service.plan(request.entity, as_of, request.configuration)
        return RunOutcome(f"a test run sends nothing: {plan.summary()}", details=_json(plan.as_dict()))
    try:
        result = service.run(request.entity, as_of, request.actor, agent_run_id=request.agent_run_id,
                             configuration=request.configuration)
    except service.DunningRefused as refused:
        return RunOutcome(f"refused: {refused}", ok=False)
    return RunOutcome(result.summary(), details=_json(result.as_dict()))


def _json(value):
    """Details as JSON values (the run's details column): money and dates as strings."""
    from datetime import date
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, (Decimal, date)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


def _text_settings() -> tuple[Setting, ...]:
    placeholders = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    settings: list[Setting] = []
    for language in LANGUAGES:
        name = LANGUAGE_NAMES[language]
        settings.append(Setting(setting_name("titles", language), f"Level titles ({name})", "text",
                                DEFAULT_TITLES[language], "One per level, separated by |; the subject's {title} and "
                                "the PDF's heading.", validator=check_titles))
        settings.append(Setting(setting_name("subject", language), f"E-mail subject ({name})", "text",
                                DEFAULT_SUBJECTS[language], f"Placeholders: {placeholders}", validator=check_subject))
        for level, body in enumerate(DEFAULT_BODIES[language], start=1):
            settings.append(Setting(setting_name("body", language, level), f"E-mail text, level {level} ({name})",
                                    "text", body, "Placeholders as in the subject; levels after the third use the "
                                    "third's text.", validator=check_template))
    return tuple(settings)


SPEC = AgentSpec(
    key="dunning",
    name="Dunning Agent",
    description=(
        "Sends payment reminders for overdue invoices by days past due (levels 7 / 21 / 35 by default), each with "
        "a PDF listing the overdue invoices, an optional fee per level and statutory interest where the legal "
        "entity sets a rate. Never for a SEPA debit still in collection, a disputed invoice or a customer on hold; "
        "paid and credited invoices drop out. Preview who gets which level under Dunning (/dunning) before the "
        "first send. Runs in Code mode: pure Python, no LLM calls, zero API cost."
    ),
    trigger_events=("schedule.triggered", "manual.trigger"),
    settings=(
        Setting("levels", "Reminder levels (days past due)", "days", "7,21,35",
                "Level 1 at the first number of days past the due date, and so on; levels are sent in order, the "
                "next one at least the difference in days after the previous reminder.", maximum=3650),
        Setting("fees", "Fee per level", "text", "0,5.00,10.00",
                "One amount per level in the invoice's currency, a dot for decimals, e.g. 0,5.00,10.00 (empty: no "
                "fees).", validator=check_fees),
        *_text_settings(),
    ),
    queue="default",
    run=run,
    job_timeout=DELIVERY_TIMEOUT * 5,
    overview_panel="agents/panels/dunning.html",
)
