"""The rate limit per client address on the sign-in posts (Flask-Limiter, counters in the app's Redis).

A Limiter per app: the extension keeps its storage on itself, and one process may build several apps (tests).
The limit is read from the config at each request (LOGIN_RATE_LIMIT), so a test can set a small one. The account's
own growing delays (app/signin.py) are in the database and hold whatever the address.
"""
from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from app.accounts import record_rate_limited

# The sign-in steps and the pages of account e-mails (asking for a reset link, using it, accepting an invitation).
LIMITED_ENDPOINTS = ("auth.login", "auth.second_factor", "auth.enrol", "auth.forgot_password", "auth.reset_password",
                     "auth.accept_invitation")


def storage_uri(redis_url: str) -> str:
    """REDIS_URL in the limits package's notation (a Unix socket is `redis+unix://`)."""
    return "redis+unix://" + redis_url[len("unix://"):] if redis_url.startswith("unix://") else redis_url


def init_app(app: Flask) -> Limiter:
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config["REDIS_URL"]))
    limiter = Limiter(get_remote_address, app=app)
    # One budget per address for all of them together.
    limit = limiter.shared_limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], scope="sign-in", methods=["POST"])
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    app.extensions["arbill_limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def too_many(error):
        if _first_refusal_this_minute():
            record_rate_limited(request.path, str(error.limit.limit))
        return render_template("errors/429.html", limit=str(error.limit.limit)), 429

    return limiter


def _first_refusal_this_minute() -> bool:
    """Whether this address's refusal is the first in its minute: the audit trail gets one row per address and
    minute, not one per request an attacker sends. Without Redis: no row (the limit then counts in memory)."""
    from redis.exceptions import RedisError

    from app.queues import get_redis

    key = f"{current_app.config['RATELIMIT_KEY_PREFIX']}-audited:{request.remote_addr}"
    try:
        return bool(get_redis().set(key, 1, nx=True, ex=60))
    except RedisError:
        current_app.logger.warning("sign-in rate limit hit by %s (Redis unreachable: not audited)", request.remote_addr)
        return False
