"""One chunk of a billing run: plan each contract in Python, write the chunk in one transaction.

A chunk whose write fails is redone contract by contract, so only the bad contract fails. Every
write takes the entity's billing lock first (app/billing/ledger.py).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import suppress
from datetime import date
from functools import partial
from operator import itemgetter
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from app.billing.ledger import (EntityInfo, PreparedInvoices, billed_period_starts, invoiced_among, lock_entity,
                                prepare_invoices, write_invoices)
from app.addresses import PostalAddress
from app.billing.money import LineInput
from app.billing.planner import ContractPlan, ContractTerms, plan_contract
from app.billing.requirements import Buyer, Seller
from app.billing.run_end import finish_if_done
from app.bulk import copy_rows, for_each_id, json_encoder, row_encoder
from app.extensions import db
from app.billing.vat import TaxTreatment
from app.payments.credits import NewInvoice, apply_customer_credits
from app.records.precedence import first_set
from app.models import BillingRun, BillingRunItem, Contract, ContractLine, Customer, LegalEntity, TaxCode
from app.models.types import utcnow

log = logging.getLogger(__name__)

ITEM_COLUMNS = ("billing_run_id", "contract_id", "status", "periods_billed", "invoice_ids", "periods", "totals",
                "reason")
INVOICE_IDS_AT = ITEM_COLUMNS.index("invoice_ids")  # known only once the invoices are written


def _entity_info(entity: LegalEntity) -> EntityInfo:
    return EntityInfo(entity.id, entity.code, entity.invoice_prefix)


def load_terms(entity: LegalEntity, contract_ids: list[int], default_terms: int) -> dict[int, ContractTerms]:
    """Snapshots of the contracts, their lines and their customers' party details, read in one query."""
    query = (
        select(Contract.reference, Contract.customer_id, Contract.currency, Contract.frequency, Contract.start_date,
               Contract.end_date, Contract.payment_terms_days, *BUYER_COLUMNS, ContractLine.position,
               ContractLine.description, ContractLine.quantity, ContractLine.unit_price, ContractLine.vat_rate,
               TaxCode.code, TaxCode.rate, TaxCode.category, TaxCode.reason, TaxCode.reason_code, TaxCode.note)
        .join(Customer, Customer.id == Contract.customer_id)
        .outerjoin(ContractLine, ContractLine.contract_id == Contract.id)
        .outerjoin(TaxCode, TaxCode.id == ContractLine.tax_code_id)
    )
    contracts: dict[int, tuple] = {}
    lines: dict[int, list[tuple[int, LineInput]]] = defaultdict(list)
    treatments: dict[tuple, TaxTreatment] = {}  # one object per code: the invoice rows share it
    for row in for_each_id(query, Contract.id, contract_ids):
        cid, contract = row[0], row[1:_LINE_AT]  # the contract's columns, then BUYER_COLUMNS
        position, description, quantity, unit_price, vat_rate, code, code_rate = row[_LINE_AT:_LINE_AT + 7]
        treatment = tuple(row[_LINE_AT + 7:])  # category, reason, reason_code, note
        contracts.setdefault(cid, contract)
        if position is None:
            continue
        tax = None
        if code is not None:
            tax = treatments.get((code, *treatment))
            if tax is None:
                tax = treatments[(code, *treatment)] = TaxTreatment(treatment[0], code, *treatment[1:])
            vat_rate = code_rate  # the code's rate is the line's (the line keeps a copy of it)
        lines[cid].append((position, LineInput(description, quantity, unit_price, vat_rate, tax)))
    fallback, _ = first_set(entity.payment_terms_days, default_terms)  # contract > entity > agent (precedence.py)
    seller = seller_of(entity)
    terms = {}
    for cid, (reference, customer_id, currency, frequency, start_date, end_date, days, *buyer) in contracts.items():
        ordered = tuple(line for _position, line in sorted(lines[cid], key=itemgetter(0)))
        terms[cid] = ContractTerms(cid, reference, customer_id, currency, frequency, start_date, end_date, ordered,
                                   first_set(days, fallback)[0], seller, _buyer(*buyer))
    return terms


# The customer's columns the legal check reads (app/billing/requirements.py), in _buyer's order.
BUYER_COLUMNS = (Customer.name, Customer.address_line1, Customer.address_line2, Customer.postcode, Customer.city,
                 Customer.subdivision, Customer.country, Customer.vat_id, Customer.buyer_reference, Customer.email)


_LINE_AT = 8 + len(BUYER_COLUMNS)  # where a row's line columns start: the key, 7 contract columns, the buyer's


def _buyer(name, line1, line2, postcode, city, subdivision, country, vat_id, buyer_reference, email) -> Buyer:
    return Buyer(name, PostalAddress.of(line1, line2, postcode, city, subdivision, country), vat_id, buyer_reference,
                 email)


def seller_of(entity: LegalEntity) -> Seller:
    return Seller(entity.postal_address, entity.vat_id, entity.tax_number, entity.finance_email,
                  entity.contact_name, entity.contact_phone, entity.contact_email, entity.registration_id)


def recorded_contracts(run_id: int, contract_ids: list[int]) -> set[int]:
    """The contracts of `contract_ids` that already have an outcome in the run."""
    return {row.key for row in for_each_id(select(BillingRunItem.id).where(BillingRunItem.billing_run_id == run_id),
                                           BillingRunItem.contract_id, contract_ids)}


def plan_contracts(entity: LegalEntity, contract_ids: list[int], as_of: date, payment_terms_days: int) -> list[ContractPlan]:
    """What each contract needs as of `as_of` (invoices to write, or why it cannot be billed): what a chunk
    writes, and what a run's preview (app/billing/preview.py) adds up."""
    terms = load_terms(entity, contract_ids, payment_terms_days)
    billed = billed_period_starts(contract_ids)
    return [plan_contract(terms[cid], billed.get(cid, set()), as_of) for cid in contract_ids if cid in terms]


def process_chunk(run_id: int, contract_ids: list[int], settings: dict[str, Any], *,
                  first_attempt: bool = False) -> None:
    """Bill one chunk of contracts: one transaction, redone contract by contract if it fails.

    A retried job first skips the contracts it already recorded; on a `first_attempt` there are none
    to skip, and the check under the lock (`_recheck`) still catches a duplicated job.
    """
    run = db.session.get(BillingRun, run_id)
    if run is None or run.status != "running":
        db.session.rollback()
        return
    entity = run.legal_entity
    done = set() if first_attempt else recorded_contracts(run_id, contract_ids)
    todo = [cid for cid in contract_ids if cid not in done]  # a retried chunk job skips what it did
    plans = plan_contracts(entity, todo, run.as_of, settings["payment_terms_days"])
    info, dry_run, depth = _entity_info(entity), run.dry_run, run.event_depth
    db.session.rollback()  # end the read transaction before taking the entity lock
    write = partial(_write_chunk, run_id, info, dry_run=dry_run, depth=depth)
    try:
        write(plans, post=settings["auto_post"])
    except DBAPIError as error:
        _raise_if_database_away(error)
        db.session.rollback()
        log.warning("run %s: chunk write failed (%s); redoing contract by contract", run_id, error.orig)
        for plan in plans:
            try:
                write([plan], post=settings["auto_post"])
            except DBAPIError as single:
                _raise_if_database_away(single)
                db.session.rollback()
                reason = f"the database refused the invoice: {_first_line(single.orig)}"
                write([ContractPlan(plan.contract_id, error=reason)], post=False)
    finish_if_done(run_id)


def _write_chunk(run_id: int, entity: EntityInfo, plans: list[ContractPlan], *, post: bool, dry_run: bool,
                 depth: int = 0) -> None:
    """Write the chunk's invoices, run items and progress in one transaction.

    The rows are built before the entity lock is taken, so other chunks' writes overlap with that;
    under the lock only the re-checks, the ids and numbers, and the COPYs.
    """
    rows = _prepare(run_id, entity, plans, {}, post=post, dry_run=dry_run, depth=depth)
    lock_entity(entity.id)
    checked, notes = _recheck(run_id, plans, dry_run)
    if checked is not plans:  # a duplicated job, or another run's invoices: build the rows again
        plans, rows = checked, _prepare(run_id, entity, checked, notes, post=post, dry_run=dry_run, depth=depth)
    invoices, items = rows
    invoice_ids: dict[int, list[int]] = defaultdict(list)
    written = [] if invoices is None else write_invoices(entity, invoices)
    for invoice in written:
        invoice_ids[invoice.contract_id].append(invoice.id)
    if post and written:  # customer credits (credit notes on paid invoices) settle into the new invoices
        customers = {p.contract_id: d.customer_id for p in plans for d in p.drafts}
        issued = {(d.contract_id, d.period.start): d.issue_date for p in plans for d in p.drafts}
        apply_customer_credits(entity.id, [
            NewInvoice(w.id, customers[w.contract_id], w.number, w.currency, w.total,
                       issued[(w.contract_id, w.period_start)]) for w in written], run_id)
    encode_json = json_encoder()
    for plan, item in zip(plans, items):
        item[INVOICE_IDS_AT] = encode_json(invoice_ids.get(plan.contract_id, []))
    copy_rows(BillingRunItem.__table__, ITEM_COLUMNS, items, encoded=True)
    progressed = db.session.execute(
        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status == "running").values(
            contracts_processed=BillingRun.contracts_processed + len(plans),
            contracts_invoiced=BillingRun.contracts_invoiced + sum(1 for p in plans if p.drafts),
            contracts_failed=BillingRun.contracts_failed + sum(1 for p in plans if p.error),
            invoices_created=BillingRun.invoices_created + sum(len(p.drafts) for p in plans),
            heartbeat_at=utcnow(),
        )
    ).rowcount
    if not progressed:  # the run was failed by a sweep meanwhile: keep nothing of this chunk
        db.session.rollback()
        return
    db.session.commit()


def _prepare(run_id: int, entity: EntityInfo, plans: list[ContractPlan], notes: dict[int, str], *, post: bool,
             dry_run: bool, depth: int) -> tuple[PreparedInvoices | None, list[list[Any]]]:
    """The invoice rows (none for a dry run) and the run items of `plans`, encoded for COPY; the
    items' invoice ids are still open."""
    drafts = [d for p in plans for d in p.drafts]
    invoices = None if dry_run else prepare_invoices(entity, drafts, post=post, billing_run_id=run_id, depth=depth)
    encode = row_encoder(BillingRunItem.__table__, ITEM_COLUMNS)
    items = [encode((run_id, plan.contract_id, plan.status, len(plan.drafts), None,
                     [d.period.start.isoformat() for d in plan.drafts], {c: str(t) for c, t in plan.totals().items()},
                     plan.error or notes.get(plan.contract_id))) for plan in plans]
    return invoices, items


def _recheck(run_id: int, plans: list[ContractPlan], dry_run: bool) -> tuple[list[ContractPlan], dict[int, str]]:
    """Under the entity lock, what others wrote meanwhile is visible: a duplicated chunk job finds its
    contracts done, and a concurrent run's invoices are not billed again. Returns `plans` itself if
    nothing changed, else the plans left and a note per contract whose periods were taken."""
    notes: dict[int, str] = {}
    recorded = recorded_contracts(run_id, [p.contract_id for p in plans])
    checked = [p for p in plans if p.contract_id not in recorded]
    taken = {} if dry_run else invoiced_among(d for p in checked for d in p.drafts)
    if taken:
        for i, plan in enumerate(checked):
            periods = taken.get(plan.contract_id)
            if periods:
                remaining = tuple(d for d in plan.drafts if d.period.start not in periods)
                notes[plan.contract_id] = (
                    f"{len(plan.drafts) - len(remaining)} period(s) already invoiced by another run: nothing to do")
                checked[i] = ContractPlan(plan.contract_id, remaining, plan.error)
    return (plans if not recorded and not taken else checked), notes


def _raise_if_database_away(error: DBAPIError) -> None:
    """A lost connection (the server restarted, the network broke) says nothing about the contracts:
    the chunk job fails as a whole and RQ's retry (or the supervisor) does it again, rather than
    recording contracts as refused when the server answers again half-way through the redo."""
    if error.connection_invalidated or (isinstance(error, OperationalError) and error.statement is None):  # cut; refused
        with suppress(DBAPIError):
            db.session.rollback()
        raise error


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


