"""Policy decorators stacked on views: `@role_required("accountant")`, `@org_admin_required`.

Roles are held per legal entity (`User.role_in`): `role_required` asks about the legal entity the request works on
(the header's), and `entity_record_or_404` (app/web/helpers.py) asks the same role of the record's own legal entity.
"""
from __future__ import annotations

from functools import wraps

from flask import abort, g
from flask_login import current_user, login_required


def role_required(role: str):
    """Logged in, and at least `role` (viewer < accountant < admin) in the current legal entity; otherwise 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            from app.web.helpers import current_entity

            g.required_role = role
            entity = current_entity()
            if not current_user.can(role, entity.id if entity else None):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def org_admin_required(view):
    """An organisation admin: manages legal entities, people, agents and the job queues; otherwise 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_org_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


admin_required = role_required("admin")
accountant_required = role_required("accountant")
