"""Cash application: bank statements in, money applied to invoices (the Reconciliation Agent's service).

`import_statement` reads a statement (app/banking), refuses it whole when it is not the entity's account or
currency, stores its entries once (an entry imported before is a duplicate: nothing is added), and — when the
Reconciliation Agent is enabled — applies them at once, so the page and `flask bank import` answer with what
was matched. `reconcile` is the agent: for each new entry, a credit that answers a SEPA debit collects it, a
debit that returns one re-opens its invoice (the Payment Collection Agent retries it), other credits are
matched by app.payments.matching and applied as payments (`payment.received`), an over-payment becomes the
customer's credit, and what is not certain waits in the unmatched queue. The accountant's tools on that queue are
in app/payments/bank_queue.py. Every application is audited with its reason.

Services here work in the caller's transaction; the callers (CLI, views, the agent's job) commit.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from app.transactions import transactional
from app.agents.settings import agent_settings, configuration_of
from app.audit import Actor, audit_row, record, record_many
from app.banking.statements import Entry, Statement, read_statement
from app.billing.ledger import lock_entity
from app.billing.money import round_money
from app.billing.references import reference_body
from app.bulk import copy_rows, new_ids
from app.errors import BankImportError, PaymentError, StatementError
from app.extensions import db
from app.models import (AgentDefinition, BankEntry, BankStatement, Contract, Customer, CustomerCredit,
                        Invoice, LegalEntity, Payment, SepaBatchItem)
from app.models.types import utcnow
from app.outbox import emit
from app.payments import matching
from app.payments.ledger import PaymentRequest, locked_dues, record_payment, record_payments

AGENT = Actor.system("Reconciliation Agent")
ZERO = Decimal(0)


@dataclass
class ImportResult:
    statement_id: int | None
    entries: int = 0
    matched: int = 0
    partially_matched: int = 0
    unmatched: int = 0
    duplicate_entries: int = 0
    returns: int = 0
    outgoing: int = 0
    amount_applied: dict[str, Decimal] = field(default_factory=dict)
    reconciled: bool = True  # False: the Reconciliation Agent is disabled, every new entry waits
    notes: list[str] = field(default_factory=list)  # how a CSV was read: "the file uses ';' — read as such"

    def as_json(self) -> dict:
        return {"statement_id": self.statement_id, "entries": self.entries, "matched": self.matched,
                "partially_matched": self.partially_matched, "unmatched": self.unmatched,
                "duplicate_entries": self.duplicate_entries, "returns": self.returns, "outgoing": self.outgoing,
                "amount_applied": {c: str(a) for c, a in sorted(self.amount_applied.items())},
                "reconciled": self.reconciled, "notes": self.notes}


# ------------------------------------------------------------------ import
def compact_iban(iban: str | None) -> str:
    return matching.compact_iban(iban)


def billing_currencies(entity: LegalEntity) -> set[str]:
    """The currencies the entity bills in: its own and its contracts'."""
    found = set(db.session.scalars(select(Contract.currency).where(Contract.legal_entity_id == entity.id).distinct()))
    return found | {entity.currency}


def check_statement(entity: LegalEntity, statement: Statement) -> list[str]:
    """Why the statement is not one of the entity's accounts, or [] when it is."""
    problems = []
    if statement.account_iban:
        if not entity.iban:
            problems.append(f"{entity.code} has no bank account (IBAN) yet: set it first "
                            f"(flask entities update {entity.code} --iban ...) so statements can be checked against it")
        elif compact_iban(statement.account_iban) != compact_iban(entity.iban):
            problems.append(f"the statement is for account {statement.account_iban}, not {entity.code}'s account "
                            f"{entity.iban}: import it for the legal entity that holds that account")
    currencies = billing_currencies(entity)
    if statement.account_currency and statement.account_currency not in currencies:
        problems.append(f"the account is in {statement.account_currency}, a currency {entity.code} does not bill in "
                        f"({', '.join(sorted(currencies))})")
    foreign = Counter(e.currency for e in statement.entries if e.currency not in currencies)
    for currency, count in sorted(foreign.items()):
        problems.append(f"{count} entr{'y is' if count == 1 else 'ies are'} in {currency}, a currency {entity.code} "
                        f"does not bill in ({', '.join(sorted(currencies))})")
    return problems


def _known_fingerprints(entity_id: int, fingerprints: list[str]) -> dict[str, int]:
    """Fingerprint → statement id, for the entries imported before."""
    known: dict[str, int] = {}
    for start in range(0, len(fingerprints), 1000):
        chunk = fingerprints[start:start + 1000]
        known.update(db.session.execute(
            select(BankEntry.fingerprint, BankEntry.statement_id)
            .where(BankEntry.legal_entity_id == entity_id, BankEntry.fingerprint.in_(chunk))).tuples().all())
    return known


def _fingerprint(entity: LegalEntity, statement: Statement, entry: Entry) -> str:
    """The reader's fingerprint, kept per bank account: a CSV has no account, so the entity's is used."""
    if statement.account_iban:
        return entry.fingerprint
    return hashlib.sha256(f"{compact_iban(entity.iban)}|{entry.fingerprint}".encode()).hexdigest()[:40]


@transactional
def import_statement(entity: LegalEntity, data: bytes, file_name: str, actor: Actor,
                     file_format: str | None = None) -> ImportResult:
    """Store the statement's new entries and (agent enabled) apply them; raises BankImportError and changes
    nothing when the file or any entry is not acceptable."""
    try:
        statement = read_statement(data, file_format, max_bytes=current_app.config["STATEMENT_MAX_BYTES"],
                                   locale=entity.locale)
    except StatementError as error:
        raise BankImportError(error.problems) from None
    problems = check_statement(entity, statement)
    if problems:
        raise BankImportError(problems)
    lock_entity(entity.id)  # one import, credit note or billing chunk of the entity at a time
    prints = [_fingerprint(entity, statement, e) for e in statement.entries]
    known = _known_fingerprints(entity.id, prints)
    new = [(p, e) for p, e in zip(prints, statement.entries) if p not in known]
    if not new:
        earlier = next(iter(known.values()), None)
        return ImportResult(statement_id=earlier, duplicate_entries=len(known), notes=list(statement.notes))
    row = BankStatement(
        legal_entity_id=entity.id, format=statement.format, version=statement.version,
        statement_id=statement.statement_id[:140], sequence=statement.sequence, account_iban=statement.account_iban,
        currency=statement.account_currency or new[0][1].currency, from_date=statement.from_date,
        to_date=statement.to_date, opening_balance=statement.opening_balance, closing_balance=statement.closing_balance,
        file_name=(file_name or "")[:255], file_sha256=hashlib.sha256(data).hexdigest(), entry_count=len(new),
        duplicate_count=len(known), imported_by=actor.label)
    db.session.add(row)
    db.session.flush()
    record("bank_statement.imported", "bank_statement", row.id, actor, legal_entity_id=entity.id,
           file_name=row.file_name, format=row.format, statement=row.statement_id, entries=len(new),
           duplicate_entries=len(known))
    emit("bank_statement.imported", {"statement_id": row.id, "entries": len(new)}, legal_entity_id=entity.id)
    result = ImportResult(statement_id=row.id, entries=len(new), duplicate_entries=len(known),
                          notes=list(statement.notes))
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "reconciliation"))
    result.reconciled = agent is not None and agent.enabled
    settings = _settings(agent) if result.reconciled else None
    book = load_book(entity) if result.reconciled else None
    # In chunks, each stored, applied and let go before the next: memory stays flat however long the file.
    for start in range(0, len(new), IMPORT_CHUNK):
        entries = _store_entries(entity, row, new[start:start + IMPORT_CHUNK])
        if result.reconciled:
            reconcile(entity, entries, settings=settings, result=result, book=book)
        else:
            result.unmatched += sum(1 for e in entries if e.direction == "credit")
        db.session.flush()
        for entry in entries:
            db.session.expunge(entry)
    return result


IMPORT_CHUNK = 2000


def _store_entries(entity: LegalEntity, statement: BankStatement, new: list[tuple[str, Entry]]) -> list[BankEntry]:
    now = utcnow()
    ids = new_ids(BankEntry.__table__, len(new))
    copy_rows(BankEntry.__table__, ENTRY_COLUMNS, [
        (entry_id, statement.id, entity.id, fingerprint, e.booking_date, e.value_date, e.direction, e.amount,
         e.currency, e.reversal, _cut(e.bank_reference, 140), _cut(e.end_to_end_id, 140),
         _cut(e.creditor_reference, 140), e.remittance or "", _cut(e.counterparty_name, 200),
         _cut(compact_iban(e.counterparty_iban), 34) or None, _cut(e.counterparty_bic, 11),
         _cut(e.return_reason, 140), _cut(e.bank_transaction_code, 64), "unmatched", ZERO, now)
        for entry_id, (fingerprint, e) in zip(ids, new)])
    return list(db.session.scalars(select(BankEntry).where(BankEntry.id.in_(ids)).order_by(BankEntry.id)))


ENTRY_COLUMNS = ("id", "statement_id", "legal_entity_id", "fingerprint", "booking_date", "value_date", "direction",
                 "amount", "currency", "reversal", "bank_reference", "end_to_end_id", "creditor_reference", "remittance",
                 "counterparty_name", "counterparty_iban", "counterparty_bic", "return_reason", "bank_transaction_code",
                 "status", "applied_amount", "created_at")


def _cut(text: str | None, length: int) -> str | None:
    return text[:length] if text else text


def _settings(agent: AgentDefinition | None = None) -> dict:
    return configuration_of(agent) if agent is not None else agent_settings("reconciliation")


# ------------------------------------------------------------------ the agent
def load_book(entity: LegalEntity) -> matching.Book:
    """The entity's numbered invoices and its customers, for the matcher."""
    invoices = {}
    for row in db.session.execute(
            select(Invoice.id, Invoice.number, Invoice.customer_id, Invoice.currency, Invoice.status,
                   Invoice.amount_due, Invoice.due_date)
            .where(Invoice.legal_entity_id == entity.id, Invoice.kind == "invoice", Invoice.number.is_not(None))):
        invoices[row.id] = matching.KnownInvoice(row.id, row.number, row.customer_id, row.currency, row.status,
                                                 Decimal(row.amount_due), row.due_date, reference_body(row.number))
    ibans: dict[str, set[int]] = defaultdict(set)
    names: dict[str, set[int]] = defaultdict(set)
    for customer_id, name, iban in db.session.execute(
            select(Customer.id, Customer.name, Customer.iban).where(Customer.legal_entity_id == entity.id)):
        if iban:
            ibans[compact_iban(iban)].add(customer_id)
        if matching.normalized_name(name):
            names[matching.normalized_name(name)].add(customer_id)
    return matching.Book(invoices, ibans, names)


def reconcile(entity: LegalEntity, entries: list[BankEntry], *, settings: dict | None = None,
              result: ImportResult | None = None, actor: Actor = AGENT, book: matching.Book | None = None
              ) -> ImportResult:
    """Apply `entries` (new or waiting in the queue) as the Reconciliation Agent.

    Credits are decided first, in memory, each seeing what the ones before it took (`matching.Book`); then
    the invoices they pay are locked and all payments written at once (`record_payments`). An entry whose
    invoices changed meanwhile (a payment typed in at that moment) is left waiting with that reason. Debits and
    SEPA collections, rare, are applied one by one, each in its own savepoint: one that fails is left waiting
    with the reason and the others are applied."""
    settings = settings or _settings()
    result = result or ImportResult(statement_id=None)
    book = book or load_book(entity)
    debits = _sepa_items([e.end_to_end_id for e in entries if e.end_to_end_id])
    plans: list[tuple[BankEntry, matching.Match]] = []
    for entry in entries:
        item = debits.get(entry.end_to_end_id) if entry.end_to_end_id else None
        if entry.direction == "debit" or (item is not None and item.status == "pending"
                                          and Decimal(item.amount) == Decimal(entry.amount)):
            savepoint = db.session.begin_nested()
            try:
                _sepa_or_outgoing(entity, entry, item, book, actor)
            except (PaymentError, ValueError) as error:
                savepoint.rollback()
                db.session.refresh(entry)
                entry.match_note = f"not applied: {error}"
            else:
                savepoint.commit()
            continue
        credit = matching.Credit(Decimal(entry.unapplied), entry.currency, entry.creditor_reference, entry.remittance,
                                 entry.counterparty_name, entry.counterparty_iban)
        decided = book.match(credit, match_by_payer=settings["match_by_payer"],
                             overpayment_to_credit=settings["overpayment_to_credit"])
        entry.match_note = decided.note
        if decided.rule is not None:
            book.apply(decided)
            plans.append((entry, decided))
    _apply_plans(entity, book, plans, actor)
    for entry in entries:
        _count(result, entry)
    return result


def _apply_plans(entity: LegalEntity, book: matching.Book, plans: list[tuple[BankEntry, matching.Match]],
                 actor: Actor) -> None:
    fresh = locked_dues(a.invoice_id for _, decided in plans for a in decided.allocations)
    changed = {i for i, invoice in fresh.items()
               if (Decimal(invoice.amount_due), invoice.status) != book.as_loaded(i)}
    kept = []
    for entry, decided in plans:
        if any(a.invoice_id in changed for a in decided.allocations):
            entry.match_note = "an invoice it pays changed while it was matched: look again"
        else:
            kept.append((entry, decided))
    requests = [PaymentRequest(a.invoice_id, a.amount, entry.booking_date, _payment_reference(entry),
                               "bank_transfer", bank_entry_id=entry.id)
                for entry, decided in kept for a in decided.allocations]
    audit: list[tuple] = []
    reread = bool(changed)
    try:
        with db.session.begin_nested():
            payment_ids = iter(record_payments(requests, actor, fresh))
    except PaymentError:  # not expected after the checks above; then entry by entry, so one cannot stop all
        reread = True
        for entry, decided in kept:
            savepoint = db.session.begin_nested()
            try:
                _record_plan(entity, entry, decided, iter(record_payments(
                    [r for r in requests if r.bank_entry_id == entry.id], actor)), actor, audit, book)
            except PaymentError as error:
                savepoint.rollback()
                db.session.refresh(entry)
                entry.match_note = f"not applied: {error}"
            else:
                savepoint.commit()
    else:
        for entry, decided in kept:
            _record_plan(entity, entry, decided, payment_ids, actor, audit, book)
    record_many(audit)
    now = locked_dues(fresh) if reread else fresh  # what the database now says, for the next chunk
    for invoice_id, due in now.items():
        book.settle(invoice_id, due.amount_due, due.status)


def _record_plan(entity: LegalEntity, entry: BankEntry, decided: matching.Match, payment_ids, actor: Actor,
                 audit: list[tuple], book: matching.Book) -> None:
    """The entry's side of its payments (in allocation order): applied amount, audit rows, credit, status."""
    for allocation in decided.allocations:
        entry.applied_amount = Decimal(entry.applied_amount) + allocation.amount
        audit.append(audit_row("bank_entry.applied", "bank_entry", entry.id, actor, legal_entity_id=entity.id,
                               invoice=book.invoices[allocation.invoice_id].number,
                               invoice_id=allocation.invoice_id, payment_id=next(payment_ids),
                               amount=str(round_money(allocation.amount, entry.currency)), currency=entry.currency,
                               rule=decided.rule,
                               reason=decided.note))
    _settle_status(entry, actor)
    if decided.credit_amount > 0:
        _keep_as_credit(entity, entry, decided.credit_customer_id, decided.credit_amount, decided.note, actor)


def _count(result: ImportResult, entry: BankEntry) -> None:
    if entry.status == "matched":
        result.matched += 1
    elif entry.status == "partially_matched":
        result.partially_matched += 1
    elif entry.status == "unmatched":
        result.unmatched += 1
    elif entry.status == "debit_return":
        result.returns += 1
    elif entry.status == "outgoing":
        result.outgoing += 1
    if entry.applied_amount and entry.direction == "credit":
        applied = round_money(Decimal(entry.applied_amount), entry.currency)
        result.amount_applied[entry.currency] = result.amount_applied.get(entry.currency, ZERO) + applied


def _sepa_items(end_to_end_ids: list[str]) -> dict[str, SepaBatchItem]:
    found: dict[str, SepaBatchItem] = {}
    for start in range(0, len(end_to_end_ids), 1000):
        chunk = end_to_end_ids[start:start + 1000]
        for item in db.session.scalars(select(SepaBatchItem).where(SepaBatchItem.end_to_end_id.in_(chunk))):
            found[item.end_to_end_id] = item
    return found


def _sepa_or_outgoing(entity: LegalEntity, entry: BankEntry, item: SepaBatchItem | None, book: matching.Book,
                      actor: Actor) -> None:
    if entry.direction == "debit":
        if item is not None and (entry.return_reason or entry.reversal or item.status in ("pending", "collected")):
            _debit_returned(entity, entry, item, book, actor)
        else:
            _resolve(entry, "outgoing", "money out, not a returned direct debit", actor)
        return
    _debit_collected(entity, entry, item, book, actor)


def _apply_to_invoice(entry: BankEntry, invoice_id: int, amount: Decimal, rule: str, note: str, actor: Actor) -> Payment:
    number = db.session.get(Invoice, invoice_id).number
    payment = record_payment(invoice_id, amount, entry.booking_date, _payment_reference(entry), actor,
                             source="bank_transfer", bank_entry_id=entry.id)
    entry.applied_amount = Decimal(entry.applied_amount) + amount
    _settle_status(entry, actor)  # with the amount: the database checks that the two agree
    record("bank_entry.applied", "bank_entry", entry.id, actor, legal_entity_id=entry.legal_entity_id,
           invoice=number, invoice_id=invoice_id, payment_id=payment.id, amount=str(amount),
           currency=entry.currency, rule=rule, reason=note)
    return payment


def _payment_reference(entry: BankEntry) -> str:
    parts = [entry.counterparty_name or "", entry.creditor_reference or "", entry.remittance or ""]
    text = " ".join(p for p in parts if p).strip() or f"bank entry #{entry.id}"
    return re.sub(r"\s+", " ", text)[:140]


def _keep_as_credit(entity: LegalEntity, entry: BankEntry, customer_id: int, amount: Decimal, note: str,
                    actor: Actor) -> CustomerCredit:
    credit = CustomerCredit(legal_entity_id=entity.id, customer_id=customer_id, bank_entry_id=entry.id,
                            currency=entry.currency, amount=amount, applied_amount=ZERO, refunded_amount=ZERO)
    db.session.add(credit)
    entry.applied_amount = Decimal(entry.applied_amount) + amount
    _settle_status(entry, actor)
    db.session.flush()
    record("customer_credit.created", "bank_entry", entry.id, actor, legal_entity_id=entity.id,
           credit_id=credit.id, customer_id=customer_id, amount=str(amount), currency=entry.currency,
           reason="over-payment: " + note)
    return credit


def _settle_status(entry: BankEntry, actor: Actor) -> None:
    applied = Decimal(entry.applied_amount)
    if applied >= Decimal(entry.amount):
        entry.status = "matched"
    elif applied > 0:
        entry.status = "partially_matched"
    else:
        entry.status = "unmatched"
    if entry.status == "matched":
        entry.resolved_by, entry.resolved_at = actor.label, utcnow()


def _resolve(entry: BankEntry, status: str, note: str, actor: Actor) -> None:
    entry.status, entry.match_note = status, note
    entry.resolved_by, entry.resolved_at = actor.label, utcnow()


def _debit_collected(entity: LegalEntity, entry: BankEntry, item: SepaBatchItem, book: matching.Book,
                     actor: Actor) -> None:
    from app.payments.collection import record_outcome

    record_outcome(item, "collected", entry.booking_date, actor, bank_entry_id=entry.id)
    payment = db.session.scalar(select(Payment).where(Payment.sepa_batch_item_id == item.id))
    entry.applied_amount = Decimal(entry.amount)
    invoice = db.session.get(Invoice, item.invoice_id)
    book.settle(invoice.id, invoice.amount_due, invoice.status)
    note = f"SEPA direct debit {item.end_to_end_id} collected"
    record("bank_entry.applied", "bank_entry", entry.id, actor, legal_entity_id=entity.id,
           invoice_id=item.invoice_id, payment_id=payment.id, amount=str(round_money(item.amount, entry.currency)),
           currency=entry.currency,
           rule="sepa_end_to_end_id", reason=note)
    entry.match_note = note
    _settle_status(entry, actor)


def _debit_returned(entity: LegalEntity, entry: BankEntry, item: SepaBatchItem, book: matching.Book,
                    actor: Actor) -> None:
    from app.payments.collection import debit_returned

    reason = entry.return_reason or ("reversed by the bank" if entry.reversal else "returned")
    if item.status == "returned":
        _resolve(entry, "debit_return", f"return of SEPA debit {item.end_to_end_id} ({reason}), recorded before",
                 actor)
        return
    debit_returned(item, entry.booking_date, reason, actor)
    invoice = db.session.get(Invoice, item.invoice_id)
    book.settle(invoice.id, invoice.amount_due, invoice.status)
    _resolve(entry, "debit_return", f"SEPA debit {item.end_to_end_id} for {invoice.number} returned ({reason}): "
                                    "due again, handed to the Payment Collection Agent", actor)
    record("bank_entry.debit_returned", "bank_entry", entry.id, actor, legal_entity_id=entity.id,
           invoice=invoice.number, invoice_id=invoice.id, end_to_end_id=item.end_to_end_id, reason=reason,
           amount=str(round_money(entry.amount, entry.currency)), currency=entry.currency)
