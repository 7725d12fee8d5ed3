"""Agents > Definitions: thin views over app.agents.service (configuration) and app.billing.runs (Run)."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app.agents.registry import AgentSpec, get_spec
from app.agents.service import current_configuration, get_agent, list_agents, set_enabled, update_configuration
from app.audit import Actor
from app.billing.queries import agent_timeline, latest_run, runs_query
from app.billing.preview import RunPreview, preview_run
from app.billing.runs import RunRefused, default_as_of, start_billing_run
from app.confirmations import confirmation_token
from app.extensions import db, htmx
from app.models import AgentDefinition
from app.records.precedence import entity_overrides
from app.records.validation import FieldError, ValidationError, parse_optional_date
from app.web.agents import bp
from app.web.confirming import confirmation_refused
from app.web.decorators import org_admin_required, role_required
from app.web.helpers import current_entity, form_locale, render
from app.web.runs.presenters import run_helpers

TABS = (("overview", "Overview", "agents.detail"), ("configuration", "Configuration", "agents.configuration"),
        ("runs", "Runs", "agents.runs"), ("audit", "Audit", "agents.audit"))
# Agents with a Run button, and whose runs are billing runs of the current legal entity.
BILLING_AGENTS = {"billing_run"}
RUNS_ON_TAB = 25

bp.context_processor(run_helpers)


def _agent_or_404(key: str) -> AgentDefinition:
    return get_agent(key) or abort(404)


def _spec(agent: AgentDefinition) -> AgentSpec | None:
    try:
        return get_spec(agent.key)
    except KeyError:
        return None


def _page(agent: AgentDefinition, tab: str, partial: str | None = None, status: int = 200, **context: Any):
    """The agent page with `tab` active; an HTMX request gets only `partial` (default: the tab's panel)."""
    entity = current_entity()
    bills = agent.key in BILLING_AGENTS
    base: dict[str, Any] = {
        "agent": agent, "spec": _spec(agent), "entity": entity, "tab": tab, "bills": bills,
        "tabs": [(k, label, url_for(endpoint, key=agent.key)) for k, label, endpoint in TABS],
    }
    if tab == "overview" and bills and entity is not None:
        base["default_as_of"] = default_as_of(entity, current_configuration(agent))
    if tab == "configuration" and base["spec"] is not None:
        base.setdefault("values", current_configuration(agent))
        base["overrides"] = {s.name: entity_overrides(agent.key, s.name) for s in base["spec"].settings}
    if tab == "runs" and bills and entity is not None:
        query = runs_query(entity.id)
        base["runs"] = list(db.session.scalars(query.limit(RUNS_ON_TAB)))
        base["runs_total"] = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if tab == "audit":
        base["timeline"] = agent_timeline(agent.name, entity.id if entity else None,
                                          entity.locale if entity else "en_US")
    base.update(context)
    response = render("agents/detail.html", partial or f"agents/_{tab}.html", **base)
    response.status_code = status
    return response


# ------------------------------------------------------------------ pages
@bp.get("")
@login_required
def index():
    entity = current_entity()
    last_runs = {key: latest_run(entity.id) for key in BILLING_AGENTS} if entity else {}
    return render("agents/index.html", agents=list_agents(), entity=entity, last_runs=last_runs)


@bp.get("/<key>")
@login_required
def detail(key: str):
    return _page(_agent_or_404(key), "overview")


@bp.get("/<key>/configuration")
@login_required
def configuration(key: str):
    return _page(_agent_or_404(key), "configuration")


@bp.get("/<key>/runs")
@login_required
def runs(key: str):
    return _page(_agent_or_404(key), "runs")


@bp.get("/<key>/audit")
@login_required
def audit(key: str):
    return _page(_agent_or_404(key), "audit")


# ------------------------------------------------------------------ the Run button
@bp.post("/<key>/run")
@role_required("accountant")
def run(key: str):
    """The Run button: a dry run starts at once; a real run answers with its preview, and starts only when
    that preview's Confirm is pressed. Answers with the result area (or the whole page)."""
    agent = _agent_or_404(key)
    if key not in BILLING_AGENTS:
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
        db.session.rollback()
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
        db.session.rollback()
        return _run_answer(agent, None, f"Not started: {refused}.", 409)
    return _run_answer(agent, result, result.message, 200)


def _preview_answer(agent: AgentDefinition, preview: RunPreview, problem: str | None = None, status: int = 200):
    token = confirmation_token("billing_run", current_user.id, preview.facts()) if preview.can_confirm else None
    return _page(agent, "overview", "agents/_run_preview.html", status, preview=preview, confirm_token=token,
                 problem=problem, confirm_url=url_for("agents.run", key=agent.key),
                 cancel_url=url_for("agents.detail", key=agent.key), hx_target="#run-result")


def _run_answer(agent: AgentDefinition, result, message: str, status: int, **context: Any):
    return _page(agent, "overview", "agents/_run_result.html", status, result=result, message=message, **context)


# ------------------------------------------------------------------ configuration (admins)
def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _saved_message(changes: dict[str, dict[str, Any]], spec: AgentSpec) -> str:
    """"Saved: Contracts per chunk 500 → 200", each setting by its label; a long text setting is only named."""
    if not changes:
        return "Nothing changed."
    labels = {s.name: s.label for s in spec.settings}
    parts = []
    for name, change in changes.items():
        old, new = _describe(change["old"]), _describe(change["new"])
        long_text = max(len(old), len(new)) > 40 or "\n" in old + new
        label = labels.get(name, name)
        parts.append(f"{label} changed" if long_text else f"{label} {old} → {new}")
    return "Saved: " + ", ".join(parts)


@bp.post("/<key>/configuration")
@org_admin_required
def configure(key: str):
    """Save the whole configuration; invalid values come back inline (422) and nothing is saved."""
    agent = _agent_or_404(key)
    spec = _spec(agent) or abort(404)
    submitted = {s.name: request.form[s.name] for s in spec.settings if s.name in request.form}
    try:
        changes = update_configuration(agent, submitted, Actor.for_user(current_user))
    except ValidationError as error:
        db.session.rollback()
        values = {s.name: (s.name in request.form) if s.type == "bool" else request.form.get(s.name, "")
                  for s in spec.settings}
        return _page(agent, "configuration", status=422, values=values, errors=error.errors)
    db.session.commit()
    saved = _saved_message(changes, spec)
    if not htmx:
        flash(saved, "success")
        return redirect(url_for("agents.configuration", key=agent.key), 303)
    return _page(agent, "configuration", saved=saved)


@bp.post("/<key>/enabled")
@org_admin_required
def toggle(key: str):
    """Enable or disable the agent (audited by the service)."""
    agent = _agent_or_404(key)
    enabled = request.form.get("enabled") == "1"
    if set_enabled(agent, enabled, Actor.for_user(current_user)):
        db.session.commit()
        flash(f"{agent.name} {'enabled' if enabled else 'disabled'}.", "success")
    else:
        flash(f"{agent.name} was already {'enabled' if enabled else 'disabled'}.", "info")
    return redirect(url_for("agents.configuration", key=agent.key), 303)
