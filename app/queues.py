"""Redis and the RQ queues. Redis only carries jobs: the database is the source of truth."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app
from redis import Redis
from rq import Queue

# Listened to in this order: billing first on billing day.
QUEUES = ("billing", "delivery", "collection", "default")


@lru_cache(maxsize=8)
def _redis_for(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def get_redis(url: str | None = None) -> Redis:
    return _redis_for(url or current_app.config["REDIS_URL"])


def get_queue(name: str = "default", url: str | None = None) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}: use one of {', '.join(QUEUES)}")
    return Queue(name, connection=get_redis(url))
