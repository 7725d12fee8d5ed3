"""Agents > Scheduled Jobs: thin views over app.schedules (service, cron words and times, rq-scheduler sync)."""
from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.audit import Actor
from app.errors import ScheduleError
from app.extensions import db
from app.models import LegalEntity, ScheduledJob
from app.models.types import utcnow
from app.records.validation import FieldError, parse_id
from app.schedules.cron import describe, next_fires, preset_to_cron, zone
from app.schedules.service import (ScheduleInput, check_name, create_schedule, delete_schedule, list_schedules,
                                   schedule_cron, set_schedule_enabled, update_schedule, when_in_words)
from app.web.decorators import role_required
from app.web.helpers import current_entity, entity_record_or_404, go_to, render, schedules_synced
from app.web.schedules import bp
from app.web.schedules.forms import (PRESET_CHOICES, WEEKDAY_CHOICES, default_values, form_values, parse_start,
                                     schedule_values, to_preset)
from app.schedules.service import schedulable_agents
from app.web.schedules.presenters import (in_zone, recent_fires, schedule_helpers,
                                          schedule_view)

PREVIEW_COUNT = 5

bp.context_processor(schedule_helpers)


def _schedule_or_404(schedule_id: int) -> ScheduledJob:
    # Any schedule of a legal entity the user may see opens by its link; the list shows the current entity's.
    return entity_record_or_404(ScheduledJob, schedule_id)


def _back(schedule: ScheduledJob | None = None) -> str:
    if schedule is not None and request.form.get("back") == "detail":
        return url_for("schedules.detail", schedule_id=schedule.id)
    return url_for("schedules.index")


# ------------------------------------------------------------------ the preview (pure: nothing saved)
def _preview(values: dict[str, Any], entity: LegalEntity | None, start_text: str = "") -> dict[str, Any]:
    """The next five fires of what the form says, or why it cannot be scheduled."""
    if entity is None:
        return {"error": "no legal entity yet: an admin adds one under Settings > Legal entities", "fires": []}
    try:
        cron, first_business_day = preset_to_cron(to_preset(values))
        after = parse_start(start_text, zone(entity.timezone)) or utcnow()
        fires = next_fires(cron, entity.timezone, after, PREVIEW_COUNT, first_business_day)
    except ScheduleError as error:
        return {"error": str(error), "fires": []}
    return {"error": None, "fires": fires, "cron": cron,
            "when": describe(cron, entity.timezone, first_business_day)}


@bp.post("/preview")
@role_required("accountant")
def preview():
    """The preview partial for the form's current values (`start`: ISO date-time, default now)."""
    entity = current_entity()
    try:
        chosen = db.session.get(LegalEntity, parse_id(request.form.get("entity_id")))
        entity = chosen if chosen is not None and current_user.can("accountant", chosen.id) else entity
    except FieldError:
        pass  # none or not an id: the current entity
    result = _preview(form_values(request.form), entity, request.form.get("start", "").strip())
    return render("schedules/_preview.html", "schedules/_preview.html", preview=result, entity=entity)


# ------------------------------------------------------------------ pages
@bp.get("")
@login_required
def index():
    entity = current_entity()
    rows = [schedule_view(s) for s in list_schedules(entity)] if entity else []
    return render("schedules/index.html", entity=entity, rows=rows)


@bp.get("/<int:schedule_id>")
@login_required
def detail(schedule_id: int):
    schedule = _schedule_or_404(schedule_id)
    return render("schedules/detail.html", schedule=schedule, view=schedule_view(schedule, PREVIEW_COUNT),
                  fires=recent_fires(schedule), entity=schedule.legal_entity)


# ------------------------------------------------------------------ the form
def _form(entity: LegalEntity | None, values: dict[str, Any], errors: dict[str, str],
          schedule: ScheduledJob | None = None, status: int = 200) -> Response:
    response = render("schedules/form.html", entity=entity, schedule=schedule, values=values, errors=errors,
                      agents=schedulable_agents(entity.id if entity else None), presets=PRESET_CHOICES,
                      weekdays=WEEKDAY_CHOICES,
                      preview=_preview(values, entity))
    response.status_code = status
    return response


def _check(values: dict[str, Any], agent_keys: set[str] | None) -> dict[str, str]:
    """Errors of the submitted values, by field (`when` for the schedule itself); nothing is saved."""
    errors: dict[str, str] = {}
    if agent_keys is not None and values["agent_key"] not in agent_keys:
        errors["agent_key"] = "choose an agent that can be scheduled"
    try:
        check_name(values["name"])
    except ScheduleError as error:
        errors["name"] = str(error)
    try:
        schedule_cron(to_preset(values))
    except ScheduleError as error:
        errors["when"] = str(error)
    return errors


@bp.route("/new", methods=["GET", "POST"])
@role_required("accountant")
def new():
    entity = current_entity()
    agents = schedulable_agents(entity.id if entity else None)
    if request.method == "GET":
        return _form(entity, default_values(agents[0].key if agents else ""), {})
    values = form_values(request.form)
    if entity is None:
        return _form(entity, values, {"form": "No legal entity yet: an admin adds one under Settings > "
                                              "Legal entities, then you can schedule its billing."}, status=409)
    errors = _check(values, {a.key for a in agents})
    if not errors:
        try:
            schedule = create_schedule(entity, ScheduleInput(values["agent_key"], values["name"],
                                                             to_preset(values)), Actor.for_user(current_user))
        except ScheduleError as error:
            errors = {"form": str(error)}
    if errors:
        return _form(entity, values, errors, status=422)
    view = schedule_view(schedule)
    flash(f"Schedule “{schedule.name}” created: {view.when}"
          + (f"; next fire {in_zone(view.next_fires[0], view.tz)}." if view.next_fires else "."), "success")
    schedules_synced()
    return redirect(url_for("schedules.index"), 303)


@bp.route("/<int:schedule_id>/edit", methods=["GET", "POST"])
@role_required("accountant")
def edit(schedule_id: int):
    schedule = _schedule_or_404(schedule_id)
    entity = schedule.legal_entity
    if request.method == "GET":
        return _form(entity, schedule_values(schedule), {}, schedule)
    values = {**form_values(request.form), "agent_key": schedule.agent.key}  # the agent does not change
    errors = _check(values, None)
    if not errors:
        try:
            changes = update_schedule(schedule, ScheduleInput(schedule.agent.key, values["name"], to_preset(values)),
                                      Actor.for_user(current_user))
        except ScheduleError as error:
            errors = {"form": str(error)}
    if errors:
        return _form(entity, values, errors, schedule, status=422)
    if changes:
        flash(f"Schedule “{schedule.name}” saved: {when_in_words(schedule)}.", "success")
        schedules_synced()
    else:
        flash(f"Schedule “{schedule.name}”: nothing changed.", "info")
    return redirect(url_for("schedules.index"), 303)


# ------------------------------------------------------------------ enable, disable, delete
def _set_enabled(schedule_id: int, enabled: bool) -> Response:
    schedule = _schedule_or_404(schedule_id)
    word = "enabled" if enabled else "disabled"
    if set_schedule_enabled(schedule, enabled, Actor.for_user(current_user)):
        flash(f"Schedule “{schedule.name}” {word}." + ("" if enabled else " It does not fire until enabled again."),
              "success")
        schedules_synced()
    else:
        flash(f"Schedule “{schedule.name}” was already {word}.", "info")
    return go_to(_back(schedule))


@bp.post("/<int:schedule_id>/enable")
@role_required("accountant")
def enable(schedule_id: int):
    return _set_enabled(schedule_id, True)


@bp.post("/<int:schedule_id>/disable")
@role_required("accountant")
def disable(schedule_id: int):
    return _set_enabled(schedule_id, False)


@bp.get("/<int:schedule_id>/delete")
@role_required("accountant")
def confirm_delete(schedule_id: int):
    """The confirmation page (without JavaScript; with it the button asks through hx-confirm)."""
    schedule = _schedule_or_404(schedule_id)
    return render("schedules/delete.html", schedule=schedule, when=when_in_words(schedule))


@bp.post("/<int:schedule_id>/delete")
@role_required("accountant")
def delete(schedule_id: int):
    schedule = _schedule_or_404(schedule_id)
    name = schedule.name
    delete_schedule(schedule, Actor.for_user(current_user))
    flash(f"Schedule “{name}” deleted; its coming fires are cancelled. Past runs stay in Runs > Billing.", "success")
    schedules_synced()
    return go_to(url_for("schedules.index"))
