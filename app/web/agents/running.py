"""Running agents from their page: the billing agent's Run (a preview, then Confirm), and Run now / Test for
every other agent with runs of its own (recorded, queued on the agent's queue; the answer follows the run live)."""
from __future__ import annotations

from typing import Any

from flask import abort, request, url_for
from flask_login import current_user

from app.agents.runs import FINAL, request_run
from app.audit import Actor
from app.billing.preview import RunPreview, preview_run
from app.billing.runs import RunRefused, start_billing_run
from app.confirmations import confirmation_token
from app.errors import AgentRunRefused
from app.extensions import db
from app.models import AgentDefinition, AgentRun
from app.records.validation import FieldError, parse_optional_date
from app.web.agents import bp
from app.agents.registry import spec_of
from app.web.agents.routes import agent_or_404, agent_page
from app.web.confirming import confirmation_refused
from app.web.decorators import role_required
from app.web.helpers import current_entity, form_locale, render


# ------------------------------------------------------------------ the Run button
@bp.post("/<key>/run")
@role_required("accountant")
def run(key: str):
    """The Run button: a dry run starts at once; a real run answers with its preview, and starts only when
    that preview's Confirm is pressed. Answers with the result area (or the whole page)."""
    agent = agent_or_404(key)
    spec = spec_of(agent)
    if spec is None or not spec.bills:
        abort(404)
    entity = current_entity()
    if entity is None:
        return _run_answer(agent, None, "No legal entity yet: an admin adds one under Settings > Legal entities, "
                                        "then you can run billing for it.", 409)
    try:
        as_of = parse_optional_date(request.form.get("as_of"), form_locale())
    except FieldError as error:
        return _run_answer(agent, None, f"As-of date: {error}.", 422, as_of_text=request.form.get("as_of", ""))
    dry_run = request.form.get("dry_run", "").lower() in {"on", "1", "true", "yes"}
    actor = Actor.for_user(current_user)
    try:
        if dry_run:  # writes no invoice, e-mails and debits nobody: starts at once
            result = start_billing_run(entity, as_of, "manual", actor, True)
            return _run_answer(agent, result, result.message, 200)
        preview = preview_run(entity, as_of)
    except RunRefused as refused:
        return _run_answer(agent, None, f"Not started: {refused}.", 409)
    if "confirm" not in request.form:  # the Run button: the preview, with its Confirm
        return _preview_answer(agent, preview)
    # Confirm: only a token standing for what would happen now, for this person, starts the run.
    refused = confirmation_refused("billing_run", preview.facts())
    if refused:
        return _preview_answer(agent, preview, f"Not started: {refused}.", 409)
    if preview.nothing_to_bill or preview.refused:  # (a run already under way: the entrance says so)
        return _preview_answer(agent, preview, "Not started: there is nothing to confirm.", 409)
    ahead = request.form.get("ahead_of_time", "").lower() in {"on", "1", "true", "yes"}
    if preview.needs_ahead_tick and not ahead:
        return _preview_answer(agent, preview, "Not started: this run bills ahead of time; tick “I want to bill "
                                               "ahead of time” to confirm that, or choose an earlier as-of date.", 422)
    try:
        result = start_billing_run(entity, preview.as_of, "manual", actor, False, ahead_of_time=ahead,
                                   confirmation={**preview.facts(), "ahead_of_time": ahead})
    except RunRefused as refused:
        return _run_answer(agent, None, f"Not started: {refused}.", 409)
    return _run_answer(agent, result, result.message, 200)


def _preview_answer(agent: AgentDefinition, preview: RunPreview, problem: str | None = None, status: int = 200):
    token = confirmation_token("billing_run", current_user.id, preview.facts()) if preview.can_confirm else None
    return agent_page(agent, "overview", "agents/_run_preview.html", status, preview=preview, confirm_token=token,
                 problem=problem, confirm_url=url_for("agents.run", key=agent.key),
                 cancel_url=url_for("agents.detail", key=agent.key), hx_target="#run-result")


def _run_answer(agent: AgentDefinition, result, message: str, status: int, **context: Any):
    return agent_page(agent, "overview", "agents/_run_result.html", status, result=result, message=message, **context)


# ------------------------------------------------------------------ Run now and Test (every other agent)
@bp.post("/<key>/run-now")
@role_required("accountant")
def run_now(key: str):
    """Queue a run of the agent for the current legal entity; answers with the run, which follows itself live."""
    return _queue_run(key, "manual")


@bp.post("/<key>/test")
@role_required("accountant")
def test(key: str):
    """A test run: the agent shows what it would do, sending only to the person testing (works while disabled)."""
    return _queue_run(key, "test")


def _queue_run(key: str, trigger: str):
    agent = agent_or_404(key)
    spec = spec_of(agent)
    if spec is None or spec.run is None or spec.bills:
        abort(404)
    entity = current_entity()
    if entity is None:
        return _agent_run_answer(agent, None, "No legal entity yet: an admin adds one under Settings > Legal "
                                              "entities, then agents can run for it.", 409)
    try:
        agent_run = request_run(agent, entity, trigger, Actor.for_user(current_user))
    except AgentRunRefused as refused:
        return _agent_run_answer(agent, None, f"Not started: {refused}.", 409)
    return _agent_run_answer(agent, agent_run, None, 200)


@bp.get("/<key>/agent-runs/<int:run_id>")
@role_required("viewer")
def agent_run(key: str, run_id: int):
    """One run's row (polled by the page until the run is final)."""
    agent = agent_or_404(key)
    entity = current_entity()
    found = db.session.get(AgentRun, run_id)
    if found is None or found.agent_id != agent.id or entity is None or found.legal_entity_id != entity.id:
        abort(404)
    return render("agents/_agent_run_row.html", "agents/_agent_run_row.html", agent=agent, agent_run=found,
                  final=FINAL)


def _agent_run_answer(agent: AgentDefinition, agent_run: AgentRun | None, message: str | None, status: int):
    return agent_page(agent, "overview", "agents/_agent_run_result.html", status, agent_run=agent_run, message=message,
                 final=FINAL)
