"""The billing run on a real database: catch-up, idempotence, end dates, failures, numbering."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.ledger import EntityInfo, lock_entity, post_drafts
from app.billing.runs import cancel_run, execute_run, retry_failed, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, BillingRun, BillingRunItem, Event, Invoice
from tests.factories import make_contract, make_entity

CLI = Actor.system("test")


def run_inline(entity, as_of, **kwargs):
    result = start_billing_run(entity, as_of, "cli", CLI, enqueue=False, **kwargs)
    assert result.started, result.message
    execute_run(result.run.id, inline=True)
    db.session.expire_all()
    return db.session.get(BillingRun, result.run.id)


def invoices(entity=None):
    query = select(Invoice).order_by(Invoice.contract_id, Invoice.period_start)
    if entity is not None:
        query = query.where(Invoice.legal_entity_id == entity.id)
    return list(db.session.scalars(query))


def item(run, contract):
    return db.session.scalar(select(BillingRunItem).where(
        BillingRunItem.billing_run_id == run.id, BillingRunItem.contract_id == contract.id))


def set_config(**values):
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, **values}
    db.session.commit()


def test_walkthrough_two_contracts_two_invoices_117_06(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
    make_contract(entity, "C-2", start=date(2026, 11, 1), customer="Starship Technologies")
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    assert run.status == "completed"
    assert (run.contracts_total, run.contracts_invoiced, run.invoices_created, run.contracts_failed) == (2, 2, 2, 0)
    assert run.totals == {"EUR": "117.06"}
    for invoice in invoices():
        assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (
            Decimal("49.00"), Decimal("9.53"), Decimal("58.53"))
        assert invoice.amount_due == invoice.total_amount and invoice.status == "issued"
        assert invoice.issue_date == date(2026, 11, 26) and invoice.due_date == date(2026, 12, 10)
        assert (invoice.period_start, invoice.period_end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert [i.number for i in invoices()] == ["DE01-2026-000001", "DE01-2026-000002"]


def test_catch_up_bills_every_missed_period_oldest_first(db_session):
    entity = make_entity()
    contract = make_contract(entity, "C-1", start=date(2026, 1, 31))
    db.session.commit()
    run = run_inline(entity, date(2026, 5, 15))
    starts = [i.period_start for i in invoices()]
    assert starts == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
    assert [i.period_end for i in invoices()] == [date(2026, 2, 27), date(2026, 3, 30), date(2026, 4, 29), date(2026, 5, 30)]
    numbers = [i.sequence_number for i in sorted(invoices(), key=lambda i: i.period_start)]
    assert numbers == [1, 2, 3, 4]  # oldest period gets the lowest number
    outcome = item(run, contract)
    assert outcome.status == "invoiced" and outcome.periods_billed == 4
    assert outcome.periods == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
    assert sorted(outcome.invoice_ids) == sorted(i.id for i in invoices())


def test_rerun_with_the_same_as_of_creates_nothing(db_session):
    entity = make_entity()
    contract = make_contract(entity, "C-1", start=date(2026, 9, 1))
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    before = [(i.id, i.number) for i in invoices()]
    again = run_inline(entity, date(2026, 11, 26))
    assert again.status == "completed" and again.invoices_created == 0 and again.totals == {}
    assert item(again, contract).status == "not_due"
    assert [(i.id, i.number) for i in invoices()] == before
    # A later as-of bills only the new period.
    later = run_inline(entity, date(2026, 12, 1))
    assert later.invoices_created == 1 and invoices()[-1].period_start == date(2026, 12, 1)


def test_end_date_stops_billing_and_a_period_starting_on_it_is_billed(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 1, 1), end=date(2026, 3, 1))
    make_contract(entity, "C-2", start=date(2026, 1, 1), end=date(2026, 2, 15))
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    by_ref = {}
    for invoice in invoices():
        by_ref.setdefault(invoice.contract.reference, []).append(invoice.period_start)
    assert by_ref["C-1"] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert by_ref["C-2"] == [date(2026, 1, 1), date(2026, 2, 1)]


def test_paused_and_ended_contracts_are_not_billed(db_session):
    entity = make_entity()
    make_contract(entity, "ACTIVE", start=date(2026, 11, 1))
    make_contract(entity, "PAUSED", start=date(2026, 11, 1), status="paused")
    make_contract(entity, "ENDED", start=date(2026, 11, 1), status="ended")
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    assert run.contracts_total == 1
    assert [i.contract.reference for i in invoices()] == ["ACTIVE"]


def test_not_yet_started_contract_is_not_due(db_session):
    entity = make_entity()
    contract = make_contract(entity, "FUTURE", start=date(2026, 12, 1))
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    assert item(run, contract).status == "not_due" and run.invoices_created == 0


def test_a_bad_contract_fails_with_a_reason_and_the_others_are_billed(db_session):
    entity = make_entity()
    good1 = make_contract(entity, "GOOD-1", start=date(2026, 11, 1))
    no_rate = make_contract(entity, "NO-RATE", start=date(2026, 11, 1),
                            lines=[("Base", "1", "10", "19"), ("Extra", "1", "5", None)])
    xts = make_contract(entity, "XTS", start=date(2026, 11, 1), currency="XTS")
    no_lines = make_contract(entity, "EMPTY", start=date(2026, 11, 1), lines=[("x", "1", "1", "19")])
    no_lines.lines.clear()
    good2 = make_contract(entity, "GOOD-2", start=date(2026, 11, 1))
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    assert run.status == "completed_with_errors"
    assert (run.contracts_failed, run.invoices_created) == (3, 2)
    assert item(run, no_rate).reason == "line 2: VAT rate missing"
    assert item(run, xts).reason == "currency XTS has no minor unit"
    assert item(run, no_lines).status == "failed" and item(run, no_lines).reason
    assert {i.contract_id for i in invoices()} == {good1.id, good2.id}
    assert [i.sequence_number for i in invoices()] == [1, 2]  # failures consume no numbers


def test_retry_failed_bills_only_the_failed_contracts_once_fixed(db_session):
    entity = make_entity()
    make_contract(entity, "GOOD", start=date(2026, 11, 1))
    bad = make_contract(entity, "BAD", start=date(2026, 11, 1), lines=[("Base", "1", "10", None)])
    db.session.commit()
    first = run_inline(entity, date(2026, 11, 26))
    bad.lines[0].vat_rate = Decimal("19")
    db.session.commit()
    retry = retry_failed(first, CLI)
    execute_run(retry.run.id, inline=True)
    db.session.expire_all()
    run = db.session.get(BillingRun, retry.run.id)
    assert run.contract_ids == [bad.id] and run.contracts_total == 1 and run.status == "completed"
    assert run.totals == {"EUR": "11.90"}


def test_line_amounts_follow_en16931_per_rate_rounding(db_session):
    entity = make_entity()
    make_contract(entity, "MIX", start=date(2026, 11, 1), lines=[
        ("A", "3", "0.335", "19"), ("B", "1", "0.005", "19"), ("C", "2", "10.00", "7")])
    make_contract(entity, "YEN", start=date(2026, 11, 1), currency="JPY", lines=[("Y", "3", "333.5", "10")])
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    mix, yen = invoices()
    # A: 1.005 → 1.01; B: 0.005 → 0.01; 19 % of 1.02 = 0.1938 → 0.19; C: 20.00, 7 % = 1.40
    assert [l.net_amount for l in mix.lines] == [Decimal("1.01"), Decimal("0.01"), Decimal("20.00")]
    assert (mix.net_amount, mix.tax_amount, mix.total_amount) == (Decimal("21.02"), Decimal("1.59"), Decimal("22.61"))
    assert (yen.net_amount, yen.tax_amount, yen.total_amount) == (Decimal("1001"), Decimal("100"), Decimal("1101"))
    assert run.totals == {"EUR": "22.61", "JPY": "1101"}


def test_payment_terms_contract_then_entity_then_agent(db_session):
    entity = make_entity(payment_terms_days=30)
    no_terms = make_entity("FR01", payment_terms_days=None)
    make_contract(entity, "OWN", start=date(2026, 11, 1), payment_terms_days=7)
    make_contract(entity, "ENTITY", start=date(2026, 11, 1))
    make_contract(no_terms, "AGENT", start=date(2026, 11, 1))
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    run_inline(no_terms, date(2026, 11, 26))
    due = {i.contract.reference: (i.due_date - i.issue_date).days for i in invoices()}
    assert due == {"OWN": 7, "ENTITY": 30, "AGENT": 14}


def test_drafts_without_numbers_until_posted(db_session):
    set_config(auto_post=False)
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 10, 1))
    make_contract(entity, "C-2", start=date(2026, 11, 1))
    db.session.commit()
    run_inline(entity, date(2026, 11, 26))
    drafts = invoices()
    assert len(drafts) == 3 and all(i.status == "draft" and i.number is None for i in drafts)
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "invoice.issued")) == 0
    lock_entity(entity.id)
    posted = post_drafts(EntityInfo(entity.id, entity.code, entity.invoice_prefix), [i.id for i in drafts])
    db.session.commit()
    assert sorted(i.number for i in posted) == ["DE01-2026-000001", "DE01-2026-000002", "DE01-2026-000003"]
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "invoice.issued")) == 3


def test_numbers_continue_across_runs_and_restart_each_year(db_session):
    entity = make_entity(invoice_prefix="ACME")
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    make_contract(entity, "C-2", start=date(2026, 11, 15))
    db.session.commit()
    run_inline(entity, date(2026, 11, 20))
    run_inline(entity, date(2026, 12, 20), ahead_of_time=True)  # fixed dates, maybe after today: asked for
    run_inline(entity, date(2027, 1, 2), ahead_of_time=True)
    numbers = sorted((i.sequence_year, i.sequence_number, i.number) for i in invoices())
    assert [n for _, _, n in numbers] == [
        "ACME-2026-000001", "ACME-2026-000002", "ACME-2026-000003", "ACME-2026-000004", "ACME-2027-000001"]
    other = make_entity("FR01")
    make_contract(other, "F-1", start=date(2026, 11, 1))
    db.session.commit()
    run_inline(other, date(2026, 11, 20))
    assert invoices(other)[0].number == "FR01-2026-000001"  # numbering is per legal entity


def test_events_and_audit_describe_the_run(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    types = list(db.session.scalars(select(Event.type).where(Event.billing_run_id == run.id).order_by(Event.id)))
    assert types == ["billing_run.started", "invoice.issued", "billing_run.completed"]
    issued = db.session.scalar(select(Event).where(Event.type == "invoice.issued"))
    assert issued.payload["number"] == "DE01-2026-000001" and issued.payload["total"] == "58.53"
    actions = [(a.action, a.actor_type, a.actor_label) for a in db.session.scalars(
        select(AuditEntry).where(AuditEntry.billing_run_id == run.id).order_by(AuditEntry.id))]
    assert actions[0] == ("billing_run.queued", "system", "test")
    assert [a for a, _, _ in actions] == ["billing_run.queued", "billing_run.started", "billing_run.completed"]


def test_dry_run_shows_the_result_and_writes_no_invoice(db_session):
    entity = make_entity()
    contract = make_contract(entity, "C-1", start=date(2026, 10, 1))
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26), dry_run=True)
    assert run.dry_run and run.status == "completed"
    assert run.totals == {"EUR": "117.06"} and run.invoices_created == 2
    assert item(run, contract).periods == ["2026-10-01", "2026-11-01"]
    assert invoices() == []
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "invoice.issued")) == 0


def test_one_run_at_a_time_per_entity(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    db.session.commit()
    first = start_billing_run(entity, date(2026, 11, 26), "manual", CLI, enqueue=False)
    second = start_billing_run(entity, date(2026, 11, 26), "cli", CLI, enqueue=False)
    assert first.started and not second.started
    assert second.run.id == first.run.id
    assert "already pending" in second.message
    assert start_billing_run(entity, None, "manual", CLI, dry_run=True, enqueue=False).started  # previews may run
    assert cancel_run(first.run, CLI)
    third = start_billing_run(entity, date(2026, 11, 26), "manual", CLI, enqueue=False)
    assert third.started and third.run.number == 3


def test_a_cancelled_run_does_nothing_when_its_job_runs(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    db.session.commit()
    result = start_billing_run(entity, date(2026, 11, 26), "manual", CLI, enqueue=False)
    cancel_run(result.run, CLI)
    execute_run(result.run.id)
    db.session.expire_all()
    assert db.session.get(BillingRun, result.run.id).status == "cancelled" and invoices() == []


def test_a_disabled_agent_refuses_to_run(db_session):
    from app.billing.runs import RunRefused

    entity = make_entity()
    db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run")).enabled = False
    db.session.commit()
    with pytest.raises(RunRefused, match="disabled"):
        start_billing_run(entity, None, "manual", CLI, enqueue=False)


def test_a_trigger_starts_at_most_one_run(db_session):
    entity = make_entity()
    db.session.commit()
    first = start_billing_run(entity, date(2026, 11, 26), "event", CLI, trigger_ref="event:7", enqueue=False)
    execute_run(first.run.id, inline=True)
    again = start_billing_run(entity, date(2026, 11, 26), "event", CLI, trigger_ref="event:7", enqueue=False)
    assert not again.started and again.run.id == first.run.id


def test_amounts_whose_float_sum_is_inexact_are_stored(db_session):
    """21.10 + 3.89 is not 24.99 in binary floating point; the database must still accept the invoice."""
    entity = make_entity()
    make_contract(entity, "FLOAT", start=date(2026, 11, 1), lines=[("A", "1", "21.10", "18.436")])
    db.session.commit()
    run = run_inline(entity, date(2026, 11, 26))
    invoice, = invoices()
    assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (
        Decimal("21.10"), Decimal("3.89"), Decimal("24.99"))
    assert run.status == "completed"


# ------------------------------------------------------------------ billing ahead of time (issue 13)
def _today(entity):

    return entity.today()


def test_a_real_run_is_capped_at_run_as_of_max_days_ahead_whoever_starts_it(app, db_session, monkeypatch):
    from datetime import timedelta

    from app.billing.runs import AsOfRefused

    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    db.session.commit()
    today = _today(entity)
    for trigger in ("manual", "cli", "event", "schedule"):
        with pytest.raises(AsOfRefused, match=r"bills at most 31 days ahead \(RUN_AS_OF_MAX_DAYS_AHEAD\)") as refused:
            start_billing_run(entity, today + timedelta(days=32), trigger, CLI, enqueue=False, ahead_of_time=True)
        assert not refused.value.needs_consent
    monkeypatch.setitem(app.config, "RUN_AS_OF_MAX_DAYS_AHEAD", 5)
    with pytest.raises(AsOfRefused, match="at most 5 days ahead"):
        start_billing_run(entity, today + timedelta(days=6), "cli", CLI, enqueue=False, ahead_of_time=True)
    assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 0
    # A dry run writes nothing and moves no money: it may look further ahead.
    dry = start_billing_run(entity, today + timedelta(days=400), "cli", CLI, True, enqueue=False)
    assert dry.started and dry.run.dry_run


def test_an_as_of_date_after_today_must_be_asked_for(db_session):
    from datetime import timedelta

    from app.billing.runs import AsOfRefused

    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 11, 1))
    db.session.commit()
    today = _today(entity)
    with pytest.raises(AsOfRefused, match=r"is 1 day after today \(.* in Europe/Berlin\): billing ahead of time must "
                                          "be asked for explicitly") as refused:
        start_billing_run(entity, today + timedelta(days=1), "manual", CLI, enqueue=False)
    assert refused.value.needs_consent
    assert start_billing_run(entity, today, "manual", CLI, enqueue=False).started  # today itself needs nothing
    run = db.session.scalar(select(BillingRun))
    cancel_run(run, CLI)
    ahead = start_billing_run(entity, today + timedelta(days=31), "manual", CLI, enqueue=False, ahead_of_time=True)
    assert ahead.started and ahead.run.as_of == today + timedelta(days=31)


def test_the_agents_as_of_offset_is_the_asking_but_stays_within_the_cap(app, db_session, monkeypatch):
    from datetime import timedelta

    from app.billing.runs import AsOfRefused

    entity = make_entity()
    db.session.commit()
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**(agent.configuration or {}), "as_of_offset_days": 7}
    db.session.commit()
    result = start_billing_run(entity, None, "schedule", CLI, enqueue=False)  # a schedule gives no date
    assert result.started and result.run.as_of == _today(entity) + timedelta(days=7)
    cancel_run(result.run, CLI)
    monkeypatch.setitem(app.config, "RUN_AS_OF_MAX_DAYS_AHEAD", 3)
    with pytest.raises(AsOfRefused, match="at most 3 days ahead"):
        start_billing_run(entity, None, "schedule", CLI, enqueue=False)
