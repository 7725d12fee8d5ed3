"""Agents > Orchestration: thin views over app.agents.rules."""
from __future__ import annotations

from flask import Response, current_app, flash, redirect, request, url_for
from flask_login import current_user

from app.agents import rules as service
from app.agents.service import get_agent
from app.audit import Actor
from app.errors import ValidationError
from app.extensions import db
from app.models import OrchestrationRule
from app.web.decorators import org_admin_required, role_required
from app.web.helpers import go_to, render
from app.web.orchestration import bp
from app.wording import event_words


def _page(values: dict | None = None, errors: dict | None = None, status: int = 200) -> Response:
    response = render("orchestration/index.html", rows=service.list_rules(), agents=service.event_agents(),
                      values=values or {"event_type": "", "agent_key": ""}, errors=errors or {},
                      max_depth=current_app.config.get("EVENT_CHAIN_MAX_DEPTH", 5))
    response.status_code = status
    return response


@bp.get("")
@role_required("viewer")
def index():
    return _page()


@bp.post("/rules")
@org_admin_required
def add():
    values = {"event_type": request.form.get("event_type", "").strip(),
              "agent_key": request.form.get("agent_key", "").strip()}
    try:
        rule = service.add_rule(values["event_type"], values["agent_key"], Actor.for_user(current_user))
    except ValidationError as error:
        return _page(values, error.errors, status=422)
    agent = get_agent(rule.agent_key)
    message = f"Rule added: when {event_words(rule.event_type)}, the {agent.name} is asked to act ({rule.event_type})."
    if rule.event_type not in agent.trigger_events:
        message += (f" Note: the {agent.name} acts on "
                    f"{', '.join(event_words(e) for e in agent.trigger_events)}; it may ignore this one.")
    flash(message, "success")
    return redirect(url_for("orchestration.index"), 303)


def _set_enabled(rule_id: int, enabled: bool) -> Response:
    rule = db.get_or_404(OrchestrationRule, rule_id)
    word = "enabled" if enabled else "disabled"
    if service.set_rule_enabled(rule, enabled, Actor.for_user(current_user)):
        flash(f"Rule “when {event_words(rule.event_type)} → {service.agent_name(rule.agent_key)}” {word}.", "success")
    else:
        flash(f"The rule was already {word}.", "info")
    return redirect(url_for("orchestration.index") + f"#rule-{rule.id}", 303)


@bp.post("/rules/<int:rule_id>/enable")
@org_admin_required
def enable(rule_id: int):
    return _set_enabled(rule_id, True)


@bp.post("/rules/<int:rule_id>/disable")
@org_admin_required
def disable(rule_id: int):
    return _set_enabled(rule_id, False)


@bp.post("/rules/<int:rule_id>/delete")
@org_admin_required
def delete(rule_id: int):
    rule = db.get_or_404(OrchestrationRule, rule_id)
    label = f"when {event_words(rule.event_type)} → {service.agent_name(rule.agent_key)}"
    service.delete_rule(rule, Actor.for_user(current_user))
    flash(f"Rule “{label}” deleted.", "success")
    return go_to(url_for("orchestration.index"))
