"""Settings > Audit trail (admins): the last verification of each chain, and "Verify now"; Settings > Audit log:
the working legal entity's audit entries, newest first, paged by key."""
from flask import abort, flash, redirect, url_for
from flask_login import current_user

from app.audit import Actor
from app.billing.queries import AUDIT_ORDER, audit_log_query, describe
from app.chain.verifying import last_verifications, verify
from app.models import LegalEntity
from app.web.decorators import admin_required
from app.web.helpers import current_entity, entity_record_or_404, entity_locale, keyset_page, render
from app.web.input import arg_search
from app.web.settings import bp


@bp.get("/audit-trail")
@admin_required
def audit_trail():
    """The chains this admin answers for: their legal entities' (an organisation admin: also the organisation's)."""
    rows = [row for row in last_verifications()
            if (current_user.is_org_admin if row[0] is None else current_user.can("admin", row[0]))]
    return render("settings/audit_trail.html", rows=rows)


@bp.get("/audit-log")
@admin_required
def audit_log():
    entity = current_entity()
    search = arg_search()
    listing = keyset_page(audit_log_query(entity.id, search), AUDIT_ORDER) if entity else None
    return render("settings/audit_log.html", entity=entity, listing=listing, q=search, describe=describe,
                  locale=entity_locale())


@bp.post("/audit-trail/<int:entity_id>/verify")
@bp.post("/audit-trail/organisation/verify", defaults={"entity_id": None})
@admin_required
def audit_trail_verify(entity_id: int | None):
    if entity_id is None and not current_user.is_org_admin:
        abort(403)
    entity = entity_record_or_404(LegalEntity, entity_id, "admin", key="id") if entity_id is not None else None
    result = verify(entity, Actor.for_user(current_user))
    if result.ok:
        flash(f"{result.entity}: the chain holds ({result.records} records).", "success")
    else:
        b = result.first_broken
        flash(f"{result.entity}: broken at {b.kind} #{b.id}: {b.reason}.", "error")
    return redirect(url_for("settings.audit_trail"))
