"""Agents > Definitions: the catalogue and each agent's tabs, thin views over app.agents.service (configuration),
app.agents.runs (runs of any agent) and app.billing.runs (the billing agent's Run with its preview).

Nothing here names an agent: what a page shows follows from the agent's spec (`bills`, `run`, `settings`,
`overview_panel`) and whether it is a custom agent. A custom agent is seen only in its own legal entity."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app.agents.base import AgentSpec
from app.agents.registry import spec_of
from app.agents.runs import FINAL, last_runs, runs_of
from app.agents.service import (current_configuration, get_agent, list_agents, set_enabled, update_configuration,
                                visible_to)
from app.agents.versions import versions_of
from app.audit import Actor
from app.billing.queries import agent_timeline, latest_run, runs_query
from app.billing.runs import default_as_of
from app.extensions import db, htmx
from app.models import AgentDefinition
from app.records.precedence import entity_overrides
from app.records.validation import ValidationError
from app.web.agents import bp
from app.web.agents.presenters import CatalogueRow, custom_context, shown_settings, submitted_settings
from app.agents.custom import templates
from app.web.decorators import org_admin_required
from app.web.helpers import current_entity, render
from app.web.runs.presenters import run_helpers

TABS = (("overview", "Overview", "agents.detail"), ("configuration", "Configuration", "agents.configuration"),
        ("runs", "Runs", "agents.runs"), ("audit", "Audit", "agents.audit"))
VERSIONS_TAB = ("versions", "Versions", "agents.versions")  # custom agents
RUNS_ON_TAB = 25

bp.context_processor(run_helpers)


def agent_or_404(key: str) -> AgentDefinition:
    """The agent by key; another legal entity's custom agent is not found."""
    agent = get_agent(key)
    entity = current_entity()
    if agent is None or not visible_to(agent, entity.id if entity else None):
        abort(404)
    return agent


def agent_page(agent: AgentDefinition, tab: str, partial: str | None = None, status: int = 200, **context: Any):
    """The agent page with `tab` active; an HTMX request gets only `partial` (default: the tab's panel)."""
    entity = current_entity()
    spec = spec_of(agent)
    bills = spec is not None and spec.bills
    tabs = TABS + ((VERSIONS_TAB,) if agent.custom else ())
    base: dict[str, Any] = {
        "agent": agent, "spec": spec, "entity": entity, "tab": tab, "bills": bills,
        "runs_itself": spec is not None and spec.run is not None and not bills, "final": FINAL,
        "tabs": [(k, label, url_for(endpoint, key=agent.key)) for k, label, endpoint in tabs],
    }
    if tab == "overview" and spec is not None and spec.overview_panel:
        base["panel"] = spec.overview_panel
        base.update(spec.overview_context(agent) if spec.overview_context is not None else {})
    if tab == "overview" and bills and entity is not None:
        base["default_as_of"] = default_as_of(entity, current_configuration(agent))
    if tab == "configuration" and base["spec"] is not None:
        base.setdefault("values", shown_settings(base["spec"], current_configuration(agent)))
        base["overrides"] = {s.name: entity_overrides(agent.key, s.name) for s in base["spec"].settings}
        saved = current_configuration(agent)
        base["saved_secrets"] = {s.name for s in base["spec"].settings if s.secret and saved.get(s.name)}
    if tab == "runs" and bills and entity is not None:
        query = runs_query(entity.id)
        base["runs"] = list(db.session.scalars(query.limit(RUNS_ON_TAB)))
        base["runs_total"] = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    elif tab == "runs" and entity is not None:
        base["agent_runs"], base["runs_total"] = runs_of(agent, entity.id, RUNS_ON_TAB)
    if tab == "configuration" and agent.custom:
        base.update(custom_context(agent))
    if tab == "versions":
        base["versions"] = versions_of(agent)
    if tab == "audit":
        base["timeline"] = agent_timeline(agent.name, entity.id if entity else None, agent_id=agent.id,
                                          locale=entity.locale if entity else "en_US")
    base.update(context)
    response = render("agents/detail.html", partial or f"agents/_{tab}.html", **base)
    response.status_code = status
    return response


# ------------------------------------------------------------------ pages
@bp.get("")
@login_required
def index():
    entity = current_entity()
    entity_id = entity.id if entity else None
    agents = list_agents(entity_id) if entity else list_agents(-1)
    rows = [CatalogueRow(agent, spec_of(agent)) for agent in agents]
    latest = last_runs(entity_id) if entity else {}
    billing = latest_run(entity.id) if entity else None
    return render("agents/index.html", rows=rows, entity=entity, last_runs=latest, last_billing_run=billing,
                  templates=templates())


@bp.get("/<key>")
@login_required
def detail(key: str):
    return agent_page(agent_or_404(key), "overview")


@bp.get("/<key>/configuration")
@login_required
def configuration(key: str):
    return agent_page(agent_or_404(key), "configuration")


@bp.get("/<key>/runs")
@login_required
def runs(key: str):
    return agent_page(agent_or_404(key), "runs")


@bp.get("/<key>/audit")
@login_required
def audit(key: str):
    return agent_page(agent_or_404(key), "audit")


@bp.get("/<key>/versions")
@login_required
def versions(key: str):
    agent = agent_or_404(key)
    if not agent.custom:
        abort(404)
    return agent_page(agent, "versions")


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
    agent = agent_or_404(key)
    spec = spec_of(agent) or abort(404)
    submitted = submitted_settings(spec, agent, request.form)
    try:
        changes = update_configuration(agent, submitted, Actor.for_user(current_user))
    except ValidationError as error:
        values = shown_settings(spec, submitted)
        return agent_page(agent, "configuration", status=422, values=values, errors=error.errors)
    saved = _saved_message(changes, spec)
    if not htmx:
        flash(saved, "success")
        return redirect(url_for("agents.configuration", key=agent.key), 303)
    return agent_page(agent, "configuration", saved=saved)


@bp.post("/<key>/enabled")
@org_admin_required
def toggle(key: str):
    """Enable or disable the agent (audited by the service)."""
    agent = agent_or_404(key)
    enabled = request.form.get("enabled") == "1"
    if set_enabled(agent, enabled, Actor.for_user(current_user)):
        flash(f"{agent.name} {'enabled' if enabled else 'disabled'}.", "success")
    else:
        flash(f"{agent.name} was already {'enabled' if enabled else 'disabled'}.", "info")
    return redirect(url_for("agents.configuration", key=agent.key), 303)
