"""Fault drills: real workers, schedulers, Redis and PostgreSQL servers of the test's own, killed and
restarted in the middle of a run or of delivery (tests/processes.py starts them).

Every test here is marked `faults`: `pytest -m "not faults"` leaves them out locally; CI runs them.
"""
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of the test's own (initdb in a temporary folder), which it may restart."""
    from tests.processes import PostgresServer

    server = PostgresServer()
    yield server
    server.close()
