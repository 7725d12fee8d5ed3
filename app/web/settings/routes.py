"""Settings (admins): legal entities and users."""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts import create_user, grants_of, set_entity_roles, update_user
from app.errors import AccountError, InvitationNotSent, ValidationError
from app.invitations import (invite_user, open_invitation_of, open_invitations, send_invitation,
                             withdraw_invitation)
from app.audit import Actor
from app.extensions import db
from app.models import LegalEntity, User
from app.models.accounts import ROLES
from app.locale_input import input_number
from app.records.entities import EntityInput, create_legal_entity, list_legal_entities, update_legal_entity
from app.web.decorators import admin_required, org_admin_required
from app.web.helpers import entity_record_or_404, render
from app.web.settings import bp

ENTITY_FIELDS = ("code", "name", "country", "currency", "vat_id", "tax_number", "registration_id", "invoice_prefix",
                 "timezone", "locale", "address_line1", "address_line2", "postcode", "city", "subdivision",
                 "contact_name", "contact_email", "contact_phone", "payment_terms_days", "finance_email", "iban",
                 "bic", "sepa_creditor_id", "collection_lead_days", "late_interest_rate")


def _entity_input(form) -> EntityInput:
    """The form as an EntityInput (the service reads and checks every field, naming each bad one)."""
    return EntityInput(**{f: form.get(f, "").strip() or None for f in ENTITY_FIELDS})


@bp.get("/entities")
@admin_required
def entities():
    """The legal entities this user administers (an organisation admin: all of them)."""
    return render("settings/entities.html",
                  rows=[e for e in list_legal_entities() if current_user.can("admin", e.id)])


@bp.route("/entities/new", methods=["GET", "POST"])
@org_admin_required
def entity_new():
    values, errors = dict(request.form), {}
    if request.method == "POST":
        try:
            entity = create_legal_entity(_entity_input(request.form), Actor.for_user(current_user))
            flash(f"Legal entity {entity.code} created.", "success")
            return redirect(url_for("settings.entities"))
        except ValidationError as error:
            errors = error.errors
    return render("settings/entity_form.html", entity=None, values=values, errors=errors,
                  agent_defaults=_agent_defaults()), 422 if errors else 200


@bp.route("/entities/<int:entity_id>/edit", methods=["GET", "POST"])
@admin_required
def entity_edit(entity_id: int):
    entity = entity_record_or_404(LegalEntity, entity_id, "admin", key="id")  # an admin of that entity (or of all)
    values = {f: "" if getattr(entity, f) is None else str(getattr(entity, f)) for f in ENTITY_FIELDS}
    if entity.late_interest_rate is not None:  # as the entity's locale writes it (9,12 for de_DE), read back the same
        values["late_interest_rate"] = input_number(entity.late_interest_rate, entity.locale)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {**dict(request.form), "code": entity.code}
        try:
            changes = update_legal_entity(entity, _entity_input({**request.form, "code": entity.code}),
                                          Actor.for_user(current_user))
            flash(f"{entity.code}: " + (", ".join(changes) + " changed." if changes else "nothing changed."), "success")
            return redirect(url_for("settings.entities"))
        except ValidationError as error:
            errors = error.errors
    return render("settings/entity_form.html", entity=entity, values=values, errors=errors,
                  agent_defaults=_agent_defaults()), 422 if errors else 200


def _agent_defaults() -> dict[str, int]:
    """The agents' values a legal entity's empty field falls back to (shown beside the field)."""
    from app.billing.runs import agent_settings
    from app.payments.collection import settings

    return {"payment_terms_days": int(agent_settings()["payment_terms_days"]),
            "collection_lead_days": int(settings()["collection_lead_days"])}


@bp.get("/users")
@org_admin_required
def users():
    rows = list(db.session.scalars(select(User).order_by(User.email)))
    return render("settings/users.html", rows=rows, grants={u.id: grants_of(u) for u in rows},
                  invitations=open_invitations())


@bp.route("/users/new", methods=["GET", "POST"])
@org_admin_required
def user_new():
    values, error, entities = dict(request.form), None, list_legal_entities()
    if request.method == "POST":
        try:
            entity = _chosen_entity(entities, request.form.get("entity", ""))
            role = request.form.get("role", "")
            user = create_user(request.form.get("email", ""), role, request.form.get("password", ""),
                               Actor.for_user(current_user), entity=entity)
            where = f"in {entity.code}" if entity else "in every legal entity"
            flash(f"User {user.email} created as {role} {where}.", "success")
            return redirect(url_for("settings.user_edit", user_id=user.id))
        except AccountError as failure:
            error = str(failure)
    return render("settings/user_form.html", user=None, values=values, error=error, roles=ROLES,
                  entities=entities), 422 if error else 200


@bp.route("/users/invite", methods=["GET", "POST"])
@org_admin_required
def user_invite():
    """Invite a person by e-mail with a role; they set their own password from the link."""
    values, error, entities = dict(request.form), None, list_legal_entities()
    if request.method == "POST":
        actor = Actor.for_user(current_user)
        try:
            entity = _chosen_entity(entities, request.form.get("entity", ""))
            role = request.form.get("role", "")
            invitation = invite_user(request.form.get("email", ""), role, actor, entity=entity)
        except AccountError as failure:
            error = str(failure)
        else:
            _send(invitation, actor, f"Invitation sent to {invitation.email} as {role} "
                                     f"{f'in {entity.code}' if entity else 'in every legal entity'}.")
            return redirect(url_for("settings.users"), 303)
    return render("settings/user_form.html", user=None, invite=True, values=values, error=error, roles=ROLES,
                  entities=entities), 422 if error else 200


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:] + "."


def _send(invitation, actor: Actor, done: str) -> None:
    """E-mail the invitation now; the admin reads whether the mail server took it."""
    try:
        send_invitation(invitation, actor)
    except InvitationNotSent as failure:
        flash(_sentence(failure), "error")
    except AccountError as failure:
        flash(_sentence(failure), "error")
    else:
        flash(done, "success")


@bp.post("/users/<int:user_id>/invitation/resend")
@org_admin_required
def invitation_resend(user_id: int):
    user = db.get_or_404(User, user_id)
    invitation = open_invitation_of(user)
    if invitation is None:
        flash(f"{user.email} has no open invitation to send again.", "error")
    else:
        _send(invitation, Actor.for_user(current_user),
              f"Invitation sent again to {user.email}; the links sent before no longer work.")
    return redirect(url_for("settings.users"), 303)


@bp.post("/users/<int:user_id>/invitation/withdraw")
@org_admin_required
def invitation_withdraw(user_id: int):
    user = db.get_or_404(User, user_id)
    email = user.email
    try:
        withdraw_invitation(user, Actor.for_user(current_user))
    except AccountError as failure:
        flash(_sentence(failure), "error")
    else:
        flash(f"Invitation to {email} withdrawn: its link no longer works.", "success")
    return redirect(url_for("settings.users"), 303)


def _chosen_entity(entities: list[LegalEntity], code: str) -> LegalEntity | None:
    if not code:
        return None
    for entity in entities:
        if entity.code == code:
            return entity
    raise AccountError(f"there is no legal entity {code!r}")


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@org_admin_required
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    values, error = {"role": user.role, "active": user.active}, None
    if request.method == "POST":
        values = {"role": request.form.get("role", ""), "active": bool(request.form.get("active"))}
        try:
            changes = update_user(user, role=values["role"], active=values["active"],
                                  password=request.form.get("password") or None, actor=Actor.for_user(current_user))
            flash(f"{user.email}: " + (", ".join(changes) + " changed." if changes else "nothing changed."), "success")
            return redirect(url_for("settings.users"))
        except AccountError as failure:
            error = str(failure)
    return _edit_page(user, values, error)


def _edit_page(user: User, values: dict, error: str | None, grant_error: str | None = None):
    held = dict(grants_of(user))
    return render("settings/user_form.html", user=user, values=values, error=error, grant_error=grant_error,
                  roles=ROLES, entities=list_legal_entities(), held=held), 422 if error or grant_error else 200


@bp.post("/users/<int:user_id>/roles")
@org_admin_required
def user_roles(user_id: int):
    """The user's role in each legal entity, as the table on their page sets it (empty: none there)."""
    user = db.get_or_404(User, user_id)
    try:
        roles = {entity: request.form.get(f"role_{entity.id}") or None for entity in list_legal_entities()
                 if f"role_{entity.id}" in request.form}
        changes = set_entity_roles(user, roles, Actor.for_user(current_user))
    except AccountError as failure:
        return _edit_page(user, {"role": user.role, "active": user.active}, None, str(failure))
    flash(f"{user.email}: " + ("; ".join(changes) + "." if changes else "no role changed."), "success")
    return redirect(url_for("settings.user_edit", user_id=user.id))
