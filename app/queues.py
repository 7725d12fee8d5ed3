"""Redis and the RQ queues. Redis only carries jobs: the database is the source of truth."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache

from flask import current_app
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue

# Listened to in this order: billing first on billing day.
QUEUES = ("billing", "delivery", "collection", "default")
# What redis-py raises while the server is down, restarting or unreachable.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


@lru_cache(maxsize=8)
def _redis_for(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def get_redis(url: str | None = None) -> Redis:
    return _redis_for(url or current_app.config["REDIS_URL"])


def get_queue(name: str = "default", url: str | None = None) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}: use one of {', '.join(QUEUES)}")
    return Queue(name, connection=get_redis(url))


class RedisOutage:
    """Waits out a Redis outage for a long-running process (the worker, the scheduler).

    `wait()` pings Redis with exponential back-off (1, 2, 4 … seconds, at most `max_delay`), logs one
    line per attempt saying when it retries and one line when Redis answers again. It sleeps in
    short slices, so a stop request (`stopping()` true, e.g. after SIGTERM) ends the wait at once.
    """

    def __init__(self, connection: Redis, who: str, log: logging.Logger, *, max_delay: float = 30.0,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.connection, self.who, self.log = connection, who, log
        self.max_delay, self.stopping = max(1.0, float(max_delay)), stopping

    def wait(self, error: BaseException) -> bool:
        """Return once Redis answers (True), or when a stop is requested meanwhile (False)."""
        began, delay = time.monotonic(), 1.0
        while True:
            self.log.warning("%s: Redis is unreachable (%s); retrying in %d s", self.who, _one_line(error), delay)
            if not self._sleep(delay):
                return False
            try:
                self.connection.ping()
            except REDIS_DOWN as again:
                error, delay = again, min(delay * 2, self.max_delay)
                continue
            self.log.warning("%s: Redis is back after %d s", self.who, round(time.monotonic() - began))
            return True

    def _sleep(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.25))
        return False


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
