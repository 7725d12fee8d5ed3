"""Webhooks: the signed JSON POST of the Webhook template (app/agents/templates/webhook.py) and its delivery log.

A delivery is one event (or one test ping) to one webhook agent's URL; each attempt is a `webhook_deliveries` row
with the answer. The scheme receivers verify is in docs/webhooks.md:

    X-Arbill-Timestamp: <unix seconds>
    X-Arbill-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import func, select

from app.audit import Actor, record
from app.errors import WebhookFailed
from app.extensions import db
from app.models import AgentDefinition, Event, LegalEntity, WebhookDelivery
from app.models.types import utcnow
from app.records.validation import column_length, one_line

SIGNATURE_VERSION = "v1"
SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 200
URL_MAX_LENGTH = column_length(WebhookDelivery.url)
EXCERPT_CHARS = 500
# Hosts a plain http:// URL may name (a receiver on the same machine, for trying it out).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
USER_AGENT = "Arbill-Webhook/1"


# ------------------------------------------------------------------ settings
def check_url(text: str) -> None:
    url = text.strip()
    one_line(url, "the URL")
    if not url:
        raise ValueError("enter the receiver's address, e.g. https://erp.example.com/hooks/arbill")
    if len(url) > URL_MAX_LENGTH:
        raise ValueError(f"at most {URL_MAX_LENGTH} characters (this has {len(url)})")
    if any(c.isspace() for c in url):
        raise ValueError("the URL contains a space: encode it as %20")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{url!r} is not a web address: start it with https://, e.g. https://erp.example.com/hooks")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ValueError("use https:// (the payload and its signature must not travel in clear text); plain "
                         "http:// only for localhost or 127.0.0.1, for trying it out")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number from 1 to 65535") from None
    if parts.username or parts.password:
        raise ValueError("put no user or password in the URL: the receiver checks the signature instead")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." not in host and host not in LOCAL_HOSTS:
            raise ValueError(f"{host!r} is not a full host name, e.g. erp.example.com") from None


def check_secret(text: str) -> None:
    one_line(text, "the signing secret")
    secret = text.strip()
    if len(secret) < SECRET_MIN_LENGTH:
        raise ValueError(f"at least {SECRET_MIN_LENGTH} characters (this has {len(secret)}): a long random text, e.g. "
                         "from `python -c \"import secrets; print(secrets.token_hex(32))\"`")
    if len(secret) > SECRET_MAX_LENGTH:
        raise ValueError(f"at most {SECRET_MAX_LENGTH} characters (this has {len(secret)})")


# ------------------------------------------------------------------ payload and signature
def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Arbill-Signature value: v1=<hex HMAC-SHA256 over "<timestamp>.<body>" keyed with the secret>."""
    digest = hmac.new(secret.strip().encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str, *, tolerance_seconds: int = 300,
           now: float | None = None) -> bool:
    """What a receiver does (docs/webhooks.md): the signature matches and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    expected = signature(secret, timestamp, body)
    return age <= tolerance_seconds and any(hmac.compare_digest(expected, part.strip())
                                            for part in (header or "").split(","))


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z (the database's times are UTC, with or without their zone)."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def payload_body(event_id: str, event_type: str, created_at: datetime, entity_code: str | None,
                 data: dict[str, Any]) -> bytes:
    """The JSON body, compact and with sorted keys: the same bytes for every attempt of one delivery."""
    document = {"id": event_id, "type": event_type, "created_at": _iso(created_at), "legal_entity": entity_code,
                "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()


def event_body(event: Event, entity: LegalEntity | None) -> bytes:
    return payload_body(f"evt_{event.id}", event.type, event.created_at, entity.code if entity else None,
                        dict(event.payload or {}))


def delivery_id(agent: AgentDefinition, delivery_key: str) -> str:
    """X-Arbill-Delivery: the same for every attempt of one delivery, so receivers can drop repeats."""
    return f"whd_{agent.id}_{delivery_key.replace(':', '_')}"


# ------------------------------------------------------------------ posting, with the log
@dataclass
class Attempt:
    row: WebhookDelivery | None  # None: delivered before, nothing sent
    status: str

    @property
    def ok(self) -> bool:
        return self.status in ("delivered", "already delivered")

    def describe(self) -> str:
        if self.row is None:
            return "delivered before: not sent again"
        answer = f"HTTP {self.row.response_code}" if self.row.response_code else (self.row.error or "no answer")
        return f"attempt {self.row.attempt} to {self.row.url}: {answer}, {self.row.duration_ms} ms — {self.status}"


def delivered_before(agent: AgentDefinition, delivery_key: str) -> bool:
    return db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.agent_id == agent.id, WebhookDelivery.delivery_key == delivery_key,
        WebhookDelivery.status == "delivered").limit(1)) is not None


def _next_attempt(agent: AgentDefinition, delivery_key: str) -> int:
    return (db.session.scalar(select(func.max(WebhookDelivery.attempt)).where(
        WebhookDelivery.agent_id == agent.id, WebhookDelivery.delivery_key == delivery_key)) or 0) + 1


def post(agent: AgentDefinition, settings: dict[str, Any], delivery_key: str, event_type: str, body: bytes, *,
         event_id: int | None = None, final: bool = True) -> Attempt:
    """POST `body` signed to the agent's URL once, and log the attempt (committed). A delivery that succeeded
    before is not sent again. `final`: no retry follows (a failure is `failed`, else `retrying`)."""
    if delivered_before(agent, delivery_key):
        return Attempt(None, "already delivered")
    url, secret = settings["url"].strip(), settings["signing_secret"]
    attempt = _next_attempt(agent, delivery_key)
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Arbill-Event": event_type,
               "X-Arbill-Delivery": delivery_id(agent, delivery_key), "X-Arbill-Attempt": str(attempt),
               "X-Arbill-Timestamp": str(timestamp), "X-Arbill-Signature": signature(secret, timestamp, body)}
    code, excerpt, error = None, "", None
    started = time.monotonic()
    try:
        with requests.post(url, data=body, headers=headers, timeout=int(settings["timeout_seconds"]),
                           allow_redirects=False, stream=True) as response:
            code = response.status_code
            raw = next(response.iter_content(EXCERPT_CHARS * 4), b"")
            excerpt = raw.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]
    except requests.RequestException as failure:
        error = f"{type(failure).__name__}: {failure}"[:EXCERPT_CHARS]
    duration_ms = int((time.monotonic() - started) * 1000)
    if code is not None and 200 <= code < 300:
        status = "delivered"
    else:
        status = "failed" if final else "retrying"
        if code is not None:
            error = f"HTTP {code}: the receiver did not accept it (2xx expected)" + (
                "; redirects are not followed: use the final URL" if 300 <= code < 400 else "")
    row = WebhookDelivery(agent_id=agent.id, delivery_key=delivery_key, event_id=event_id, event_type=event_type,
                          attempt=attempt, url=url, status=status, response_code=code, response_excerpt=excerpt,
                          error=error, duration_ms=duration_ms, created_at=utcnow())
    db.session.add(row)
    if status == "failed":
        record("webhook.delivery_failed", "agent", agent.id, Actor.system(agent.name),
               legal_entity_id=agent.legal_entity_id, agent=agent.key, delivery_key=delivery_key,
               event_type=event_type, attempts=attempt, response_code=code, error=error)
    db.session.commit()
    return Attempt(row, status)


def raise_for(agent: AgentDefinition, delivery_key: str, attempt: Attempt) -> None:
    """Make RQ retry an attempt that will be followed by another (its text: ids and the status only)."""
    if attempt.status == "retrying":
        answer = f"HTTP {attempt.row.response_code}" if attempt.row.response_code else "no answer"
        raise WebhookFailed(f"webhook agent {agent.id} {delivery_key} attempt {attempt.row.attempt}: {answer}")


# ------------------------------------------------------------------ the log, for the agent's page
def latest_deliveries(agent: AgentDefinition, limit: int = 50) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.agent_id == agent.id)
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


def delivery_log_context(agent: AgentDefinition) -> dict[str, Any]:
    """The Overview panel's context (agents/panels/webhook_deliveries.html)."""
    counts = dict(db.session.execute(select(WebhookDelivery.status, func.count()).where(
        WebhookDelivery.agent_id == agent.id).group_by(WebhookDelivery.status)).all())
    return {"deliveries": latest_deliveries(agent), "delivery_counts": counts, "excerpt_chars": EXCERPT_CHARS}
