"""Confirm before money moves: a preview's Confirm button carries a signed token of what the preview said.

The token binds a purpose ("billing_run", "sepa_close", "bulk_resend"), the person and a digest of the
preview's facts (as-of date, entity, counts, totals, ...), signed with the SECRET_KEY and dated. The action
recomputes its preview and checks the token against it: a forged or foreign token, one older than
CONFIRM_MAX_AGE_SECONDS, or one whose preview no longer matches what would happen now is refused with a
reason, and the caller shows the new preview to confirm again.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.errors import ConfirmationRefused


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"arbill.confirm.{purpose}")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def digest(facts: dict[str, Any]) -> str:
    """sha256 of the facts as sorted-key JSON (Decimals normalized, dates ISO)."""
    return hashlib.sha256(json.dumps(_plain(facts), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def confirmation_token(purpose: str, user_id: int | None, facts: dict[str, Any]) -> str:
    return _serializer(purpose).dumps({"u": user_id, "d": digest(facts)})


def check_confirmation(purpose: str, token: str | None, user_id: int | None, facts: dict[str, Any]) -> None:
    """Raise ConfirmationRefused unless `token` confirms exactly these facts, for this person, recently."""
    if not token:
        raise ConfirmationRefused("nothing was confirmed yet: check the preview, then press Confirm")
    max_age = int(current_app.config.get("CONFIRM_MAX_AGE_SECONDS", 900))
    try:
        claimed = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise ConfirmationRefused(f"the preview is older than {max_age // 60} minutes: check it again, "
                                  "then confirm") from None
    except BadSignature:
        raise ConfirmationRefused("the confirmation is not one this page gave out: check the preview, "
                                  "then confirm") from None
    if not isinstance(claimed, dict) or claimed.get("u") != user_id:
        raise ConfirmationRefused("the confirmation was given to someone else: check the preview, then confirm")
    if claimed.get("d") != digest(facts):
        raise ConfirmationRefused("what would happen changed since the preview was made: check the new preview, "
                                  "then confirm again")
