"""Where a setting's value comes from, said in words: contract > legal entity > agent."""
from types import SimpleNamespace

from app.records.precedence import collection_lead_days, first_set, payment_terms


def entity(**values):
    return SimpleNamespace(**{"code": "DE01", "payment_terms_days": None, "collection_lead_days": None, **values})


def test_the_first_value_set_wins():
    assert first_set(None, 14, 30) == (14, 1)
    assert first_set(0, 14, 30) == (0, 0)  # zero days is a value: due on receipt
    assert first_set(None, None) == (None, -1)


def test_payment_terms_say_where_they_come_from_and_what_does_not_apply():
    de01 = entity(payment_terms_days=14)
    terms = payment_terms(de01, agent_default=30)
    assert (terms.value, terms.source) == (14, "legal_entity")
    assert str(terms) == "14 days, from the legal entity DE01; the Billing Run Agent's default 30 days does not apply"
    contract = SimpleNamespace(payment_terms_days=45)
    assert str(payment_terms(de01, contract, agent_default=30)) == (
        "45 days, from the contract; the legal entity DE01 14 days and the Billing Run Agent's default 30 days "
        "do not apply")
    assert str(payment_terms(entity(), SimpleNamespace(payment_terms_days=None), agent_default=30)) == (
        "30 days, from the Billing Run Agent's default")
    # The same value at two levels: nothing is overridden.
    assert str(payment_terms(entity(payment_terms_days=30), agent_default=30)) == "30 days, from the legal entity DE01"


def test_collection_lead_days():
    assert str(collection_lead_days(entity(collection_lead_days=1), agent_value=2)) == (
        "1 day, from the legal entity DE01; the Payment Collection Agent's setting 2 days does not apply")
    assert collection_lead_days(entity(), agent_value=2).source == "agent"
