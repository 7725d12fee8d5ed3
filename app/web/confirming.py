"""The web half of a confirm step (app/confirmations.py): the page with its Confirm button, and the check of
a pressed Confirm against what would happen now. Every action that moves money or e-mails customers uses it."""
from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_login import current_user

from app.confirmations import check_confirmation, confirmation_token
from app.errors import ConfirmationRefused
from app.web.helpers import render


def confirm_step(template: str, purpose: str, facts: dict[str, Any], *, can_confirm: bool = True,
                 problem: str | None = None, status: int = 200, partial: str | None = None,
                 **context: Any) -> Response:
    """Render the step: `confirm_token` (None when there is nothing to confirm) stands for `facts`, for this
    person; `problem` says why an earlier Confirm was refused (then `status` is 409)."""
    token = confirmation_token(purpose, current_user.id, facts) if can_confirm else None
    response = render(template, partial, confirm_token=token, problem=problem, **context)
    response.status_code = status
    return response


def confirmation_refused(purpose: str, facts: dict[str, Any]) -> str | None:
    """Why the submitted form's Confirm does not stand for `facts` now (None: it does)."""
    try:
        check_confirmation(purpose, request.form.get("confirm_token"), current_user.id, facts)
    except ConfirmationRefused as refused:
        return str(refused)
    return None
