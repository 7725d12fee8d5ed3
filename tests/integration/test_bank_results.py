"""Bank result files for SEPA debits: all rows or none, every bad line named."""
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Collection, Customer, Invoice, Payment, SepaBatch, SepaBatchItem
from app.payments.collection import start_collection
from app.payments.results import OutcomeError, ResultImportFailed, apply_outcome, import_results
from app.payments.sepa import close_batch
from tests.factories import CUSTOMER_ADDRESS, make_contract, make_entity

ACTOR = Actor.system("test")
IBAN = "DE89370400440532013000"


def sepa_world(customers=("Bolt", "Starship Technologies"), creditor=True, close=True, payment_terms=None):
    """An entity whose SEPA customers each have one invoice in one batch (closed unless `close=False`);
    `payment_terms`: days per customer's contract (else the default)."""
    entity = make_entity()
    if creditor:
        entity.sepa_creditor_id, entity.iban, entity.bic = "DE98ZZZ09999999999", "DE02120300000000202051", "BYLADEM1001"
    for n, name in enumerate(customers, start=1):
        db.session.add(Customer(legal_entity_id=entity.id, name=name, email=f"ap{n}@example.com",
                                payment_method="sepa_debit", **CUSTOMER_ADDRESS, iban=IBAN, mandate_reference=f"MANDATE-{n}",
                                mandate_date=date(2026, 1, 15)))
        db.session.flush()
        make_contract(entity, f"C-{n}", start=date(2026, 11, 1), customer=name,
                      payment_terms_days=payment_terms[n - 1] if payment_terms else None)
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ACTOR, enqueue=False).run
    execute_run(run.id, inline=True)
    for invoice in db.session.scalars(select(Invoice).order_by(Invoice.id)):
        start_collection(invoice.id)
    batch = db.session.scalar(select(SepaBatch))
    if close:
        close_batch(batch, ACTOR, date(2026, 11, 27))
        db.session.commit()
    return entity, batch


def items():
    return list(db.session.scalars(select(SepaBatchItem).order_by(SepaBatchItem.id)))


def csv(*lines: str) -> io.StringIO:
    return io.StringIO("end_to_end_id,outcome,date,reason\n" + "".join(line + "\n" for line in lines), newline="")


def test_a_good_file_records_every_answer(db_session):
    _, batch = sepa_world()
    first, second = items()
    summary = import_results(csv(f"{first.end_to_end_id},collected,2026-12-01,",
                                 f"{second.end_to_end_id},Returned,2026-12-01,AM04 insufficient funds"), ACTOR)
    db.session.commit()
    assert (summary.collected, summary.returned, summary.amount_collected) == (1, 1, Decimal("58.53"))
    assert (first.status, second.status, second.return_reason) == ("collected", "returned", "AM04 insufficient funds")
    paid = db.session.get(Invoice, first.invoice_id)
    assert (paid.status, paid.amount_due) == ("paid", 0)
    retry = db.session.scalar(select(Collection).where(Collection.invoice_id == second.invoice_id))
    assert (retry.status, retry.next_retry_on) == ("retry_scheduled", date(2026, 12, 4))
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sepa_results.imported"))
    assert entry.subject_id == batch.id and entry.details["collected"] == 1 and entry.details["returned"] == 1
    assert entry.actor_label == "test"


def test_a_bad_file_names_every_bad_line_and_changes_nothing(db_session):
    entity, closed = sepa_world(customers=("Bolt", "Starship Technologies", "Acme"))
    first, second, third = items()
    apply_outcome(third, "collected", "2026-12-01", "", ACTOR)  # already answered before the file
    db.session.commit()
    with pytest.raises(ResultImportFailed) as failure:
        import_results(csv(
            f"{first.end_to_end_id},collected,2026-12-01,",       # line 2: fine on its own
            "NOPE-1,collected,2026-12-01,",                        # line 3: unknown debit
            f"{second.end_to_end_id},bounced,2026-12-01,",        # line 4: bad outcome
            f"{second.end_to_end_id},returned,2026-12-01,AM04",   # line 5: appears again
            f"{third.end_to_end_id},collected,2026-12-01,",       # line 6: not pending any more
            ",returned,01.12.2026,",                               # line 7: no id, bad date, no reason
        ), ACTOR)
    assert failure.value.errors == [
        "line 3: end_to_end_id: no debit with the end-to-end id NOPE-1",
        "line 4: outcome: 'bounced' is not an outcome: use collected or returned",
        f"line 5: end_to_end_id: {second.end_to_end_id} appears again (first on line 4)",
        f"line 6: end_to_end_id: debit {third.end_to_end_id} is already collected",
        "line 7: end_to_end_id: end-to-end id is required",
        "line 7: date: '01.12.2026' is not a date (use YYYY-MM-DD)",
        "line 7: reason: say why the debit was returned (e.g. MD06, AC04, AM04 insufficient funds)",
    ]
    db.session.rollback()
    assert [i.status for i in items()] == ["pending", "pending", "collected"]
    assert db.session.get(Invoice, first.invoice_id).status == "issued"
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1  # only the earlier one
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sepa_results.imported")) is None


def test_debits_of_an_open_batch_cannot_take_answers(db_session):
    sepa_world(customers=("Bolt",), close=False)
    item, = items()
    with pytest.raises(ResultImportFailed) as failure:
        import_results(csv(f"{item.end_to_end_id},collected,2026-12-01,"), ACTOR)
    assert failure.value.errors == [f"line 2: end_to_end_id: debit {item.end_to_end_id} has not been sent yet: "
                                    f"close batch #{item.batch_id} first"]


def test_a_file_without_the_header_or_rows_is_refused(db_session):
    with pytest.raises(ResultImportFailed) as failure:
        import_results(io.StringIO("id,result\nX,collected\n"), ACTOR)
    assert failure.value.errors == ["line 1: header: missing column(s) end_to_end_id, outcome, date, reason "
                                    "(the header is end_to_end_id,outcome,date,reason)"]
    with pytest.raises(ResultImportFailed, match="1 problem"):
        import_results(csv(), ACTOR)


def test_a_debit_larger_than_what_is_still_due_is_refused_before_anything_is_written(db_session):
    sepa_world(customers=("Bolt",))
    item, = items()
    invoice = db.session.get(Invoice, item.invoice_id)
    invoice.amount_due = Decimal("10.00")  # paid in part by hand meanwhile
    db.session.commit()
    with pytest.raises(OutcomeError) as failure:
        apply_outcome(item, "collected", "2026-12-01", "", ACTOR)
    assert failure.value.errors == {"end_to_end_id": f"debit {item.end_to_end_id} (58,53\xa0€) is more than the "
                                                     f"10,00\xa0€ still due on {invoice.number}"}
    assert item.status == "pending"


def test_cells_that_cannot_be_an_id_or_a_reason_are_named_not_looked_up(db_session):
    """A NUL in an id was a PostgreSQL DataError in the lookup; a line break in a reason, a broken line."""
    sepa_world(customers=("Bolt",))
    item, = items()
    with pytest.raises(ResultImportFailed) as failure:
        import_results(csv(
            "DE01-2026\x00-1,collected,2026-12-01,",
            f"{'X' * 36},collected,2026-12-01,",
            f'{item.end_to_end_id},returned,2026-12-01,"AM04\rinsufficient funds"',
            f"{item.end_to_end_id}-2,collected,9999-12-31,",
        ), ACTOR)
    assert failure.value.errors == [
        "line 2: end_to_end_id: end-to-end id contains a NUL character at character 10; it must be one line of "
        "plain text",
        "line 3: end_to_end_id: end-to-end id is 36 characters long; at most 35 fit",
        "line 4: reason: the reason contains a line break (CR) at character 5; it must be one line of plain text",
        f"line 6: end_to_end_id: no debit with the end-to-end id {item.end_to_end_id}-2",  # the CR ended line 4
        "line 6: date: 9999-12-31 is outside the dates Arbill takes (1900-01-01 to 2999-12-31)",
    ]
    db.session.rollback()
    assert [i.status for i in items()] == ["pending"]


def test_a_result_file_longer_than_the_cap_is_refused(db_session):
    sepa_world(customers=("Bolt", "Starship Technologies"))
    first, second = items()
    rows = (f"{first.end_to_end_id},collected,2026-12-01,", f"{second.end_to_end_id},collected,2026-12-01,")
    with pytest.raises(ResultImportFailed) as failure:
        import_results(csv(*rows), ACTOR, max_rows=1)
    assert failure.value.errors == ["the file has more than 1 rows, the most an import here takes; "
                                    "split it into smaller files"]
    db.session.rollback()
    assert [i.status for i in items()] == ["pending", "pending"]
