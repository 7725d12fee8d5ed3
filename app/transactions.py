"""Who owns the transaction: the service that starts a unit of work commits it.

A service that changes records is `@transactional` (or opens `with unit_of_work():`). Called from a
view, a CLI command or a job, it is the outermost unit: it commits when it returns and rolls back
when it raises, so its caller neither commits nor rolls back. Called from inside another unit (one
service using another, a command that does several things at once), it joins that unit: only the
outermost one commits, so the whole is atomic.

Side effects that must not run before the rows they are about exist (a job to Redis, a nudge to the
outbox relay) are registered with `after_commit(fn)`: they run once the outermost unit has
committed, never after a rollback. A failing side effect is logged, not raised: the commit stands,
and what it left undone is picked up by the relay's watchdog or the supervisor (docs/architecture.md).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

from app.extensions import db

log = logging.getLogger(__name__)

_DEPTH = "arbill.unit_of_work.depth"
_AFTER = "arbill.unit_of_work.after_commit"

P = ParamSpec("P")
R = TypeVar("R")


def in_unit_of_work() -> bool:
    return db.session.info.get(_DEPTH, 0) > 0


@contextmanager
def unit_of_work(*, commit_on: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Commit on leaving the outermost unit, roll back if it raises; an inner unit joins the outer one.

    `commit_on`: failures that are facts to keep (a mail server that refused an invitation, audited): the unit
    commits what it recorded, then the failure goes on to the caller."""
    info = db.session.info
    depth = info.get(_DEPTH, 0)
    info[_DEPTH] = depth + 1
    try:
        yield
    except commit_on:
        info[_DEPTH] = depth
        if depth == 0:
            _commit()
        raise
    except BaseException:
        info[_DEPTH] = depth
        if depth == 0:
            info.pop(_AFTER, None)
            db.session.rollback()
        raise
    info[_DEPTH] = depth
    if depth == 0:
        _commit()


def _commit() -> None:
    info = db.session.info
    try:
        if db.session().in_transaction():  # a service that committed on its own and read nothing since: done
            db.session.commit()
    except BaseException:
        info.pop(_AFTER, None)
        db.session.rollback()
        raise
    for effect in info.pop(_AFTER, ()):
        try:
            effect()
        except Exception:  # noqa: BLE001 - the commit stands; the effect's owner has a fallback
            log.exception("a side effect after the commit failed: %s", getattr(effect, "__qualname__", effect))


def transactional(service: Callable[P, R] | None = None, *, commit_on: tuple[type[BaseException], ...] = ()):
    """Run `service` as a unit of work (see the module's docstring): `@transactional` or
    `@transactional(commit_on=(SomeRecordedFailure,))`."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with unit_of_work(commit_on=commit_on):
                return function(*args, **kwargs)

        return wrapper

    return decorate if service is None else decorate(service)


def after_commit(effect: Callable[[], object]) -> None:
    """Run `effect` once the outermost unit of work commits (at once outside any unit: nothing is pending)."""
    if not in_unit_of_work():
        effect()
        return
    db.session.info.setdefault(_AFTER, []).append(effect)



@contextmanager
def discarded() -> Iterator[None]:
    """An outermost unit of work that is rolled back at the end, whatever the services inside did: to try or measure
    them and keep nothing (the importer's memory test and bench). The services inside join it, so none commits."""
    info = db.session.info
    depth = info.get(_DEPTH, 0)
    info[_DEPTH] = depth + 1
    try:
        yield
    finally:
        info[_DEPTH] = depth
        info.pop(_AFTER, None)
        db.session.rollback()
