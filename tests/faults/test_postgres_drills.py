"""Fault drill: PostgreSQL restarted in the middle of a billing run.

A PostgreSQL server of the test's own (initdb in a temporary folder, tests/processes.py), real
workers and the real scheduler against it and a Redis of the test's own. With a chunk in a
worker's hands the server is stopped (every connection cut), left down a few seconds and started
again. Nobody acts: the workers, the scheduler's supervision and the chunk jobs' retries carry
the run to its end.
"""
import time
from contextlib import suppress

import pytest
from flask_migrate import upgrade
from sqlalchemy.exc import OperationalError

from app import create_app
from app.audit import Actor
from app.billing.runs import start_billing_run
from app.extensions import db
from app.models import BillingRunItem, LegalEntity
from config import normalize_database_url
from tests.conftest import make_config
from tests.factories import make_entity
from tests.faults.test_run_drills import (AS_OF, CONTRACTS, FAST, ended, hold_the_lock_mid_run, small_chunks,
                                          workers_registered)
from tests.integration.test_billing_concurrency import assert_billed_once_without_gaps, seed_contracts
from tests.processes import wait_until

CLI = Actor.system("test")


# `fast` terminates every session and the server stays away for a few seconds; `immediate` is a
# crash (recovered from the WAL) and the server is back at once, so that a chunk redoing its
# contracts one by one after the cut meets a server that answers again.
@pytest.mark.parametrize("mode, away", [("fast", 3), ("immediate", 0)], ids=["fast-3s", "immediate"])
def test_a_postgresql_restart_mid_run_is_ridden_out_and_the_run_completes(private_postgres, private_redis,
                                                                        processes, mode, away):
    database = normalize_database_url(private_postgres.url)
    env = {**FAST, "DATABASE_URL": private_postgres.url, "REDIS_URL": private_redis.url}
    app = create_app(make_config(database, private_redis.url))
    with app.app_context():
        upgrade()
        small_chunks()
        entity = make_entity()
        seed_contracts(entity, CONTRACTS)
        scheduler = processes.scheduler(env)
        workers = [processes.worker(name, env, "billing") for name in ("drill-p", "drill-q")]
        wait_until(lambda: workers_registered(private_redis.client(), "drill-p", "drill-q"), "both workers to listen")
        entity_id, run_id = entity.id, start_billing_run(entity, AS_OF, "manual", CLI).run.id
        # A worker holds a chunk it cannot commit (the test holds the entity's billing lock) when
        # the server goes: its transaction, and every other connection, is cut.
        hold_the_lock_mid_run(entity_id, run_id)
        private_postgres.restart(mode, away=away)
        back = time.monotonic()
        with suppress(OperationalError):  # our connection, holding the lock, was cut
            db.session.rollback()
        db.session.remove()

        run = wait_until(lambda: ended(run_id), "the run to end")
        print(f"{mode}: run completed {time.monotonic() - back:.1f} s after PostgreSQL was back")
        assert run.status == "completed", run.error
        assert run.contracts_failed == 0 and run.contracts_processed == CONTRACTS, \
            [i.reason for i in db.session.query(BillingRunItem).filter(BillingRunItem.status != "invoiced")][:3]
        assert run.invoices_created == 2 * CONTRACTS
        assert_billed_once_without_gaps(db.session.get(LegalEntity, entity_id), 2 * CONTRACTS)
        assert scheduler.alive() and all(w.alive() for w in workers), "the processes rode out the restart"
        db.session.remove()
        db.engine.dispose()
