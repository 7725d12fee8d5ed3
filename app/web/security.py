"""The security headers every response carries (one after-request hook).

- Content-Security-Policy: scripts, styles, fonts and images from our own origin only; no inline
  script, no `on…=` handler, no `style="…"` attribute, no `<style>` block, no eval. The pages keep
  their behaviour in app/static/arbill.js and their looks in app/static/arbill.css; htmx runs with
  `allowEval` and `includeIndicatorStyles` off (base.html's `htmx-config`). Pages are never framed
  (`frame-ancestors 'none'`, and X-Frame-Options for older browsers).
- A response that sets its own policy keeps it: the RQ dashboard (nonces, app/web/ops/rq.py) and a
  mailbox attachment (`sandbox`). The other headers are added to those too.
- Strict-Transport-Security only when `HSTS_SECONDS` is set (ProductionConfig: a year): over plain
  HTTP in development it would lock a browser out of localhost's other ports.
"""
from __future__ import annotations

from flask import Flask, Response, current_app

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
}


def hsts_value(seconds: int) -> str:
    return f"max-age={seconds}; includeSubDomains"


def security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    seconds = current_app.config.get("HSTS_SECONDS")
    if seconds:
        response.headers.setdefault("Strict-Transport-Security", hsts_value(int(seconds)))
    return response


def init_app(app: Flask) -> None:
    # App-wide after-request hooks run after the blueprints' ones, so a blueprint's own policy is kept.
    app.after_request(security_headers)
