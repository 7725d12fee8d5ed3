"""Settings > Audit trail (admins): the last verification of each chain, and "Verify now"."""
from flask import flash, redirect, url_for
from flask_login import current_user

from app.audit import Actor
from app.chain.verifying import last_verifications, verify
from app.extensions import db
from app.models import LegalEntity
from app.web.decorators import admin_required
from app.web.helpers import render
from app.web.settings import bp


@bp.get("/audit-trail")
@admin_required
def audit_trail():
    return render("settings/audit_trail.html", rows=last_verifications())


@bp.post("/audit-trail/<int:entity_id>/verify")
@bp.post("/audit-trail/organisation/verify", defaults={"entity_id": None})
@admin_required
def audit_trail_verify(entity_id: int | None):
    entity = db.get_or_404(LegalEntity, entity_id) if entity_id is not None else None
    result = verify(entity, Actor.for_user(current_user))
    db.session.commit()
    if result.ok:
        flash(f"{result.entity}: the chain holds ({result.records} records).", "success")
    else:
        b = result.first_broken
        flash(f"{result.entity}: broken at {b.kind} #{b.id}: {b.reason}.", "error")
    return redirect(url_for("settings.audit_trail"))
