"""Run summary e-mail (a template): after every billing run of its legal entity (completed or failed), e-mails a list
the run's number, as-of date, status, invoices created, totals per currency and its failures with their reasons,
with a link to the run's page. Its Run button (or a test run) sends the summary of the latest billing run.

One e-mail per billing run: each is audited (`agent.run_summary_sent`, with the run), and an event seen again
(the relay delivers at least once) finds that entry and sends nothing.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.agents.mailing import app_link, parse_recipients, recipients_for, recipients_setting, send_to_list
from app.agents.settings import configuration_of
from app.audit import Actor, record
from app.extensions import db
from app.formatting import format_money
from app.models import AgentDefinition, AuditEntry, BillingRun, BillingRunItem, Contract, Event
from app.models.runs import ACTIVE_RUN_STATUSES

RUN_EVENTS = ("billing_run.completed", "billing_run.failed")
SENT = "agent.run_summary_sent"
FAILURES_LISTED = 20
STATUS_WORDS = {"completed": "completed", "completed_with_errors": "completed with errors", "failed": "failed",
                "cancelled": "cancelled", "pending": "pending", "running": "running"}


def _failures(run: BillingRun) -> tuple[int, list[tuple[str, str]]]:
    """How many contracts failed, and the first FAILURES_LISTED (contract reference, reason)."""
    failed = (BillingRunItem.billing_run_id == run.id) & (BillingRunItem.status == "failed")
    count = db.session.scalar(select(func.count()).select_from(BillingRunItem).where(failed)) or 0
    listed = db.session.execute(select(Contract.reference, BillingRunItem.reason)
                                .join(Contract, Contract.id == BillingRunItem.contract_id).where(failed)
                                .order_by(Contract.reference).limit(FAILURES_LISTED)).all()
    return count, [(reference, reason or "no reason recorded") for reference, reason in listed]


def _money(run: BillingRun) -> str:
    locale = run.legal_entity.locale
    return ", ".join(format_money(Decimal(amount), currency, locale)
                     for currency, amount in sorted((run.totals or {}).items())) or format_money(
        Decimal(0), run.legal_entity.currency, locale)


def _label(run: BillingRun) -> str:
    return f"{'Dry run' if run.dry_run else 'Billing run'} #{run.number} for {run.legal_entity.code}"


def subject(run: BillingRun) -> str:
    failed = run.contracts_failed or 0
    status = STATUS_WORDS.get(run.status, run.status)
    if run.status == "completed_with_errors":
        status = f"completed with {failed} failure{'' if failed == 1 else 's'}"
    invoices = f"{run.invoices_created} invoice{'' if run.invoices_created == 1 else 's'}"
    return f"{_label(run)} {status}: {invoices}, {_money(run)}"


def body(run: BillingRun, agent_name: str) -> str:
    entity = run.legal_entity
    count, failures = _failures(run)
    lines = [f"{_label(run)} ({entity.name}): {STATUS_WORDS.get(run.status, run.status)}.", "",
             f"Run:               #{run.number}{' (a dry run: nothing was issued)' if run.dry_run else ''}",
             f"As of:             {run.as_of.isoformat()} ({run.period_label})",
             f"Started by:        {run.actor_label} ({run.trigger})",
             f"Status:            {STATUS_WORDS.get(run.status, run.status)}",
             f"Contracts:         {run.contracts_total} ({run.contracts_invoiced} invoiced, "
             f"{run.contracts_failed} failed)",
             f"Invoices created:  {run.invoices_created}",
             "Totals:            " + _money(run)]
    if run.status == "failed" and run.error:
        lines += ["", f"Why it failed: {run.error}"]
    if count:
        lines += ["", f"Failures: {count} contract{'' if count == 1 else 's'} could not be billed"
                  + (f" (the first {len(failures)} listed)" if count > len(failures) else "") + ":"]
        lines += [f"  {reference}: {reason}" for reference, reason in failures]
    link = app_link("runs.detail", run_id=run.id)
    lines += ["", *([f"The run: {link}"] if link else []),
              f"Sent by the agent “{agent_name}” (Run summary e-mail) of {entity.code}."]
    return "\n".join(lines) + "\n"


def _details(run: BillingRun, addresses: list[str], title: str) -> dict:
    return {"billing_run_id": run.id, "number": run.number, "status": run.status, "invoices": run.invoices_created,
            "failed": run.contracts_failed, "totals": dict(run.totals or {}), "subject": title, "sent_to": addresses}


def sent_before(agent: AgentDefinition, run: BillingRun) -> bool:
    return db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.action == SENT, AuditEntry.subject_type == "agent", AuditEntry.subject_id == agent.id,
        AuditEntry.billing_run_id == run.id).limit(1)) is not None


def _send(agent: AgentDefinition, run: BillingRun, addresses: list[str], actor: Actor, trigger: str) -> str:
    title = subject(run)
    send_to_list(addresses, title, body(run, agent.name))
    record(SENT, "agent", agent.id, actor, legal_entity_id=run.legal_entity_id, billing_run_id=run.id,
           agent=agent.key, trigger=trigger, subject=title, recipients=addresses)
    db.session.commit()
    return title


def on_event(event: Event, agent: AgentDefinition | None = None) -> str | None:
    """E-mail the summary of the billing run the event is about, once (None: not its entity's run)."""
    if agent is None or not agent.custom or event.type not in RUN_EVENTS:
        return None
    if event.legal_entity_id != agent.legal_entity_id or not agent.enabled:
        return None
    run = db.session.get(BillingRun, (event.payload or {}).get("run_id") or event.billing_run_id)
    if run is None or run.legal_entity_id != agent.legal_entity_id:
        return None
    if sent_before(agent, run):
        return "sent before"
    addresses = parse_recipients(configuration_of(agent).get("recipients"))
    _send(agent, run, addresses, Actor.for_event(event), "event")
    return "sent"


def latest_run(entity_id: int) -> BillingRun | None:
    return db.session.scalar(select(BillingRun).where(BillingRun.legal_entity_id == entity_id,
                                                      BillingRun.status.not_in(ACTIVE_RUN_STATUSES))
                             .order_by(BillingRun.number.desc(), BillingRun.id.desc()).limit(1))


def run(request: RunRequest) -> RunOutcome:
    billing_run = latest_run(request.entity.id)
    if billing_run is None:
        return RunOutcome(f"no finished billing run of {request.entity.code} yet: nothing to summarise")
    addresses, whom = recipients_for(request)
    title = subject(billing_run)
    if not addresses:
        return RunOutcome(f"would e-mail “{title}”; sent to {whom}", details=_details(billing_run, [], title))
    if request.test:
        send_to_list(addresses, title, body(billing_run, request.agent.name))
    else:
        _send(request.agent, billing_run, addresses, request.actor, request.trigger)
    return RunOutcome(f"e-mailed “{title}” to {whom}", details=_details(billing_run, addresses, title))


SPEC = AgentSpec(
    key="run_summary",
    name="Run summary e-mail",
    description=(
        "After every billing run of its legal entity, e-mails a list the run's number, as-of date, status, "
        "invoices created, totals per currency and its failures with their reasons, with a link to the run."
    ),
    trigger_events=(*RUN_EVENTS, "manual.trigger"),
    settings=(
        recipients_setting("E-mail addresses, separated by commas. A test run sends only to you."),
        Setting("retry_minutes", "Retry after (minutes)", "days", "1,5,30",
                "When the mail server refuses the e-mail, try again after these many minutes.", maximum=1440),
    ),
    queue="default",
    on_event=on_event,
    run=run,
    subscribes=RUN_EVENTS,
    template=True,
    retry_setting="retry_minutes",
    job_timeout=120,
)
