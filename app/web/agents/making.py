"""Agents > Create Agent ("Manual Entry"): pick a template, name the agent, fill its settings, choose its triggers;
then test and enable it on its page. And the custom agent's name and triggers on its Configuration tab."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.agents.custom import choosable_events, create_custom_agent, templates, update_custom_agent
from app.agents.registry import TEMPLATES, spec_of
from app.audit import Actor
from app.records.validation import ValidationError
from app.web.agents import bp
from app.web.agents.presenters import custom_context, custom_input, shown_settings
from app.web.agents.routes import agent_or_404, agent_page
from app.web.decorators import org_admin_required
from app.web.helpers import current_entity, render, schedules_synced


@bp.get("/new")
@org_admin_required
def new():
    """Step 1: the templates to start from."""
    return render("agents/new.html", templates=templates(), entity=current_entity())


@bp.route("/new/<template>", methods=["GET", "POST"])
@org_admin_required
def create(template: str):
    """Step 2: the agent's name, settings and triggers. It is created disabled: test it, then enable it."""
    spec = TEMPLATES.get(template) or abort(404)
    entity = current_entity()
    if entity is None:
        flash("No legal entity yet: add one under Settings > Legal entities first; a custom agent works for one.",
              "error")
        return redirect(url_for("agents.new"), 303)
    if request.method == "GET":
        return _form(spec, {"name": "", "cron": "", "events": list(spec.subscribes)},
                     shown_settings(spec, spec.defaults()), {})
    data = custom_input(spec, None, request.form)
    try:
        agent = create_custom_agent(entity, data, Actor.for_user(current_user))
    except ValidationError as error:
        return _form(spec, {"name": data.name, "cron": data.cron, "events": list(data.events)},
                     shown_settings(spec, data.settings), error.errors, 422)
    if data.cron.strip():
        schedules_synced()
    flash(f"{agent.name} created for {entity.code}, disabled. Press Test to see what it does, then enable it on "
          f"the Configuration tab.", "success")
    return redirect(url_for("agents.detail", key=agent.key), 303)


def _form(spec, custom_values: dict, values: dict, errors: dict, status: int = 200):
    setting_errors = {k.removeprefix("settings."): v for k, v in errors.items() if k.startswith("settings.")}
    response = render("agents/create.html", spec=spec, custom_values=custom_values, values=values,
                      errors={k: v for k, v in errors.items() if not k.startswith("settings.")},
                      setting_errors=setting_errors, choosable_events=choosable_events(spec), entity=current_entity())
    response.status_code = status
    return response


@bp.post("/<key>/triggers")
@org_admin_required
def triggers(key: str):
    """A custom agent's name, schedule and events: a new version when anything changed."""
    agent = agent_or_404(key)
    spec = spec_of(agent)
    if not agent.custom or spec is None:
        abort(404)
    data = custom_input(spec, agent, request.form)
    data.settings = dict(agent.configuration or {})  # the settings form saves those
    try:
        changed = update_custom_agent(agent, data, Actor.for_user(current_user))
    except ValidationError as error:
        return agent_page(agent, "configuration", status=422, custom_errors=error.errors,
                          **custom_context(agent, request.form))
    if "cron" in changed:
        schedules_synced()
    flash(f"Saved as version {agent.version}: {', '.join(changed)} changed." if changed else "Nothing changed.",
          "success" if changed else "info")
    return redirect(url_for("agents.configuration", key=agent.key), 303)
