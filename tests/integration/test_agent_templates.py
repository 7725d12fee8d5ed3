"""The custom agents' templates end to end: AR Aging Reporter and Run summary e-mail on the real database, Redis,
an RQ worker process and the SMTP sink; every template's settings refused with a message per field."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.agents.custom import CustomAgentInput, create_custom_agent
from app.agents.events import relay_outbox
from app.agents.runs import run_inline
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.formatting import format_money
from app.models import AgentRun, AuditEntry, EventHandling, User
from app.records.validation import ValidationError
from tests.factories import make_contract, make_entity
from tests.integration.test_aging import add_invoice
from tests.integration.test_delivery import work_off

ADMIN = Actor.system("test")


def custom_agent(entity, template: str, settings: dict, **kwargs):
    agent = create_custom_agent(entity, CustomAgentInput(template=template, name=kwargs.pop("name", template),
                                                         settings=settings, enabled=True, **kwargs), ADMIN)
    db.session.commit()
    return agent


def euro(amount: str, locale: str = "de_DE") -> str:
    return format_money(Decimal(amount), "EUR", locale)


# ------------------------------------------------------------------ AR Aging Reporter
def overdue_book():
    """Two customers with invoices 10, 40 and 70 days overdue (today in the entity's zone), one paid, one draft."""
    entity = make_entity(locale="de_DE")
    today = entity.today()
    add_invoice(entity, "Bolt", "1000.00", due=today - timedelta(days=40))
    add_invoice(entity, "Bolt", "200.00", due=today - timedelta(days=70))
    add_invoice(entity, "Starship Technologies", "300.50", due=today - timedelta(days=40))
    add_invoice(entity, "Starship Technologies", "999.00", due=today - timedelta(days=10))  # not 30 days yet
    add_invoice(entity, "Starship Technologies", "777.00", due=today - timedelta(days=30))  # exactly 30: not more
    add_invoice(entity, "Bolt", "50.00", due=today - timedelta(days=90), status="paid")
    db.session.commit()
    return entity


def test_the_ar_aging_reporter_e_mails_the_invoices_overdue_more_than_n_days_by_customer(app, db_session, mail_sink):
    entity = overdue_book()
    agent = custom_agent(entity, "ar_aging_reporter", {
        "days_overdue": "30", "recipients": "AR-Team@example.com, cfo@example.com"}, cron="0 8 * * 1")

    run = run_inline(agent, entity, "manual", ADMIN)

    assert run.status == "succeeded", run.error
    message, = mail_sink.messages()
    assert message["To"] == "ar-team@example.com, cfo@example.com"
    assert message["Subject"] == f"DE01: 3 invoices overdue more than 30 days: {euro('1500.50')} outstanding"
    text = message.get_content()
    bolt, starship = text.index("Bolt: 2 invoices"), text.index("Starship Technologies: 1 invoice")
    assert bolt < starship  # grouped by customer, by name
    assert f"Bolt: 2 invoices, {euro('1200.00')}" in text
    assert f"Starship Technologies: 1 invoice, {euro('300.50')}" in text
    assert "70 days overdue" in text and "40 days overdue" in text
    assert "999" not in text and "777" not in text and "50,00" not in text
    assert f"Total outstanding: {euro('1500.50')}" in text
    assert run.details["invoices"] == 3 and run.details["customers"] == 2
    assert run.details["totals"] == {"EUR": "1500.50"}
    assert run.details["sent_to"] == ["ar-team@example.com", "cfo@example.com"]
    assert "ar-team@example.com, cfo@example.com" in run.summary


def test_its_schedule_fires_on_monday_morning_in_the_entitys_zone_and_e_mails(app, db_session, mail_sink):
    from zoneinfo import ZoneInfo

    from app.models import ScheduledJob
    from app.models.types import utcnow
    from app.schedules.cron import next_fires
    from app.schedules.service import fire_schedule

    entity = overdue_book()
    agent = custom_agent(entity, "ar_aging_reporter", {"recipients": "ar@example.com"}, cron="0 8 * * 1")
    schedule = db.session.scalar(select(ScheduledJob).where(ScheduledJob.agent_id == agent.id))
    slot = next_fires(schedule.cron, entity.timezone, utcnow(), count=1)[0]
    local = slot.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)

    result = fire_schedule(schedule.id, slot)

    assert result.fired and result.agent_run_id
    message, = mail_sink.messages()
    assert message["To"] == "ar@example.com" and "3 invoices overdue more than 30 days" in message["Subject"]
    assert db.session.get(AgentRun, result.agent_run_id).trigger == "schedule"


def test_grouped_by_age_band_and_several_currencies_each_have_their_total(app, db_session, mail_sink):
    entity = overdue_book()
    add_invoice(entity, "Acme Inc", "80.00", due=entity.today() - timedelta(days=100), currency="USD")
    db.session.commit()
    agent = custom_agent(entity, "ar_aging_reporter", {"recipients": "ar@example.com", "group_by": "age"})

    run_inline(agent, entity, "manual", ADMIN)

    message, = mail_sink.messages()
    assert message["Subject"] == (f"DE01: 4 invoices overdue more than 30 days: {euro('1500.50')}, "
                                  f"{format_money(Decimal('80'), 'USD', 'de_DE')} outstanding")
    text = message.get_content()
    assert text.index("90+ days overdue") < text.index("61-90 days overdue") < text.index("31-60 days overdue")
    assert "Acme Inc" in text


def test_nothing_overdue_still_says_so_unless_told_not_to(app, db_session, mail_sink):
    entity = make_entity(locale="de_DE")
    add_invoice(entity, "Bolt", "10.00", due=entity.today() - timedelta(days=5))
    db.session.commit()
    agent = custom_agent(entity, "ar_aging_reporter", {"recipients": "ar@example.com"})
    quiet = custom_agent(entity, "ar_aging_reporter", {"recipients": "ar@example.com", "skip_when_empty": "yes"},
                         name="Quiet report")

    run_inline(agent, entity, "manual", ADMIN)
    skipped = run_inline(quiet, entity, "manual", ADMIN)

    message, = mail_sink.messages()
    assert message["Subject"] == "DE01: no invoices overdue more than 30 days"
    assert "Nothing is overdue more than 30 days" in message.get_content()
    assert skipped.status == "succeeded" and "no e-mail" in skipped.summary


def test_a_test_run_e_mails_only_the_tester_and_without_a_user_nobody(app, db_session, mail_sink, users):
    entity = overdue_book()
    agent = custom_agent(entity, "ar_aging_reporter", {"recipients": "ar@example.com"})
    tester = db.session.get(User, users["accountant"])

    by_user = run_inline(agent, entity, "test", Actor.for_user(tester))
    by_system = run_inline(agent, entity, "test", ADMIN)

    message, = mail_sink.messages()
    assert message["To"] == "accountant@example.com"
    assert "3 invoices overdue" in message["Subject"]
    assert by_user.status == "succeeded" and "accountant@example.com only" in by_user.summary
    assert by_system.status == "succeeded" and by_system.summary.startswith("would e-mail")
    assert by_system.details["sent_to"] == [] and "3 invoices" in by_system.details["subject"]


# ------------------------------------------------------------------ Run summary e-mail
def bill(entity, contracts: int = 3):
    for n in range(contracts):
        make_contract(entity, f"C-{n + 1}", start=date(2026, 11, 1), customer=f"Customer {n + 1}")
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    db.session.expire_all()
    return run


def test_after_a_billing_run_its_summary_is_e_mailed_to_the_list_once(app, db_session, mail_sink, monkeypatch):
    monkeypatch.setenv("BASE_URL", "https://billing.example.com")  # (the worker process's configuration)
    entity = make_entity(locale="de_DE")
    other = make_entity("AT01", locale="de_AT", country="AT")
    agent = custom_agent(entity, "run_summary", {"recipients": "finance@example.com, cfo@example.com"},
                         events=("billing_run.completed", "billing_run.failed"))
    run = bill(entity)
    bill(other, 1)  # another entity's run: not this agent's business

    relay_outbox()
    work_off(mail_sink, "default")

    message, = mail_sink.messages()
    assert message["To"] == "finance@example.com, cfo@example.com"
    total = format_money(Decimal(run.totals["EUR"]), "EUR", "de_DE")
    assert message["Subject"] == f"Billing run #{run.number} for DE01 completed: 3 invoices, {total}"
    text = message.get_content()
    assert "As of:             2026-11-26" in text and "Invoices created:  3" in text
    assert f"Totals:            {total}" in text
    assert f"The run: https://billing.example.com/runs/{run.id}" in text
    handlings = db.session.scalars(select(EventHandling).where(EventHandling.agent_key == agent.key)).all()
    assert len(handlings) == 2 and {h.status for h in handlings} == {"done"}  # both runs' events, one sent

    # The relay delivers at least once: the same event again sends nothing.
    from app.agents.templates.run_summary import on_event
    from app.models import Event
    event = db.session.scalar(select(Event).where(Event.type == "billing_run.completed",
                                                  Event.legal_entity_id == entity.id))
    assert on_event(event, agent) == "sent before"
    assert len(mail_sink.messages()) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "agent.run_summary_sent", AuditEntry.billing_run_id == run.id)) == 1


def test_a_run_with_failures_lists_them_with_their_reasons(app, db_session, mail_sink):
    entity = make_entity(locale="de_DE")
    make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Good")
    make_contract(entity, "C-2", start=date(2026, 11, 1), customer="Bad", lines=[("Broken", "1", "10.00", None)])
    agent = custom_agent(entity, "run_summary", {"recipients": "finance@example.com"})
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    db.session.expire_all()
    assert run.contracts_failed == 1, run.status

    outcome = run_inline(agent, entity, "manual", ADMIN)  # the Run button: the latest run's summary

    message, = mail_sink.messages()
    assert message["Subject"].startswith(f"Billing run #{run.number} for DE01 completed with 1 failure: 1 invoice, ")
    text = message.get_content()
    assert "Failures: 1 contract could not be billed:" in text and "  C-2: " in text
    assert outcome.status == "succeeded" and outcome.details["failed"] == 1


def test_the_run_summary_test_run_goes_to_the_tester_only(app, db_session, mail_sink, users):
    entity = make_entity(locale="de_DE")
    agent = custom_agent(entity, "run_summary", {"recipients": "finance@example.com"})
    nothing = run_inline(agent, entity, "test", ADMIN)
    assert nothing.status == "succeeded" and "no finished billing run" in nothing.summary
    bill(entity, 1)

    run_inline(agent, entity, "test", Actor.for_user(db.session.get(User, users["viewer"])))

    message, = mail_sink.messages()
    assert message["To"] == "viewer@example.com" and message["Subject"].startswith("Billing run #1 for DE01")
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "agent.run_summary_sent")) == 0  # a test run is not recorded as sent


# ------------------------------------------------------------------ settings refused per field
@pytest.mark.parametrize("template, settings, errors", [
    ("webhook", {"url": "http://erp.example.com/hook", "signing_secret": "short"},
     {"settings.url": "use https://", "settings.signing_secret": "at least 16 characters"}),
    ("webhook", {"url": "ftp://x", "signing_secret": "s" * 16, "timeout_seconds": "0", "retry_minutes": "5,1"},
     {"settings.url": "not a web address", "settings.timeout_seconds": "below the minimum",
      "settings.retry_minutes": "increasing"}),
    ("ar_aging_reporter", {"recipients": "ar@example.com, not-an-address", "group_by": "region", "days_overdue": "x"},
     {"settings.recipients": "'not-an-address' is not an e-mail address", "settings.group_by": "not a grouping",
      "settings.days_overdue": "not a whole number"}),
    ("run_summary", {"recipients": " , "}, {"settings.recipients": "at least one e-mail address"}),
])
def test_templates_refuse_bad_settings_naming_each_field(app, db_session, template, settings, errors):
    entity = make_entity()
    with pytest.raises(ValidationError) as refused:
        create_custom_agent(entity, CustomAgentInput(template=template, name="Bad", settings=settings), ADMIN)
    for field, words in errors.items():
        assert words in refused.value.errors.get(field, ""), refused.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AgentRun)) == 0
