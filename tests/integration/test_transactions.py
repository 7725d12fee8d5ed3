"""Who owns the transaction (app/transactions.py): the service that starts a unit of work commits it; a service
called inside another unit joins it, so the whole commits or rolls back as one; side effects wait for the commit.
And the rule holds in the code: views and commands neither commit nor roll back."""
import ast
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.audit import Actor, record
from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, Customer
from app.records import customers as customer_service
from app.transactions import after_commit, transactional, unit_of_work
from tests.conftest import ROOT
from tests.factories import make_entity
from tests.integration.test_records_services import customer_data

ME = Actor.system("test")


@pytest.fixture
def entity(db_session):
    return make_entity()


def customers_seen_by_another_connection() -> list[str]:
    """What is committed: a second connection does not see this session's uncommitted rows."""
    with db.engine.connect() as other:
        return sorted(other.execute(text("SELECT name FROM customers")).scalars())


def test_a_service_called_by_itself_commits_and_one_that_refuses_leaves_nothing(entity):
    customer_service.create_customer(entity, customer_data(name="Bolt"), ME)
    assert customers_seen_by_another_connection() == ["Bolt"]  # no caller had to commit
    with pytest.raises(ValidationError):
        customer_service.create_customer(entity, customer_data(name="Cargo", email="not an address"), ME)
    assert customers_seen_by_another_connection() == ["Bolt"]
    assert not db.session.new and not db.session.dirty  # rolled back: the session is clean for what comes next


def test_services_inside_one_unit_commit_together_or_not_at_all(entity):
    effects = []
    with pytest.raises(ValidationError):
        with unit_of_work():
            customer_service.create_customer(entity, customer_data(name="Bolt"), ME)
            after_commit(lambda: effects.append("sent"))
            assert customers_seen_by_another_connection() == []  # the inner service joined: nothing committed yet
            customer_service.create_customer(entity, customer_data(name="Cargo", email="not an address"), ME)
    assert customers_seen_by_another_connection() == [] and effects == []  # Bolt went with Cargo; no side effect

    with unit_of_work():
        customer_service.create_customer(entity, customer_data(name="Bolt"), ME)
        customer_service.create_customer(entity, customer_data(name="Cargo"), ME)
        after_commit(lambda: effects.append(customers_seen_by_another_connection()))
        assert effects == []
    assert effects == [["Bolt", "Cargo"]]  # the side effect ran after the commit and saw both rows


def test_a_failure_named_as_a_fact_commits_what_it_recorded_then_goes_on(entity):
    @transactional(commit_on=(LookupError,))
    def send_and_record():
        record("test.mail_refused", "legal_entity", entity.id, ME, legal_entity_id=entity.id)
        raise LookupError("the mail server said no")

    with pytest.raises(LookupError):
        send_and_record()
    with db.engine.connect() as other:
        assert other.execute(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "test.mail_refused")).scalar() == 1


def test_a_failing_side_effect_does_not_undo_the_commit(entity):
    def broken():
        raise ConnectionError("Redis is down")

    with unit_of_work():
        customer_service.create_customer(entity, customer_data(name="Bolt"), ME)
        after_commit(broken)
    assert customers_seen_by_another_connection() == ["Bolt"]
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1


# ------------------------------------------------------------------ the rule in the code
READS_THAT_END = {  # a rollback that ends a read, not a unit of work: a poll waiting for workers, /healthz
    ("app/cli/agents.py", "rollback"), ("app/cli/billing.py", "rollback"), ("app/web/ops/routes.py", "rollback"),
}


def _session_calls(path: Path) -> set[str]:
    calls = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("commit", "rollback"):
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr == "session":
                calls.add(node.func.attr)
    return calls


def test_views_and_commands_neither_commit_nor_roll_back():
    found = set()
    for folder in ("app/web", "app/cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            found |= {(relative, call) for call in _session_calls(path)}
    assert found - READS_THAT_END == set(), "call a @transactional service (app/transactions.py) instead"


def test_a_discarded_unit_keeps_nothing_its_services_did(entity):
    from app.transactions import discarded

    effects = []
    with discarded():
        customer_service.create_customer(entity, customer_data(name="Bolt"), ME)
        after_commit(lambda: effects.append("sent"))
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 1  # seen inside
    assert customers_seen_by_another_connection() == [] and effects == []
