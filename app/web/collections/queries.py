"""What the collections pages list: batches with their totals, debits, collections needing a person."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from app.extensions import db
from app.models import Collection, Customer, Invoice, LegalEntity, SepaBatch, SepaBatchItem
from app.payments.collection import needs_attention
from app.paging import KeysetPage, Ordering, Sort, key


@dataclass
class BatchRow:
    batch: SepaBatch
    items: int
    control_sum: Decimal


BATCH_ORDER = Ordering((Sort("created", "Created", key(SepaBatch.created_at, SepaBatch.id), descending_first=True),),
                       default="-created")


def batches_query(entity: LegalEntity):
    """The entity's batches, newest first, with how many debits each holds."""
    return (select(SepaBatch, func.count(SepaBatchItem.id))
            .outerjoin(SepaBatchItem, SepaBatchItem.batch_id == SepaBatch.id)
            .where(SepaBatch.legal_entity_id == entity.id)
            .group_by(SepaBatch.id)
            .order_by(SepaBatch.created_at.desc(), SepaBatch.id.desc()))


def batch_rows(page: KeysetPage) -> KeysetPage:
    """The page's rows as BatchRow: a closed batch's control sum as sent, an open one's so far."""
    page.items = [BatchRow(batch, count, batch_total(batch)) for batch, count in page.items]
    return page


def batch_total(batch: SepaBatch) -> Decimal:
    if batch.status == "closed" and batch.control_sum is not None:
        return batch.control_sum
    return sum((item.amount for item in batch.items if item.status == "pending"), Decimal(0))


@dataclass
class ItemRow:
    item: SepaBatchItem
    invoice: Invoice
    customer: Customer


def batch_items(batch: SepaBatch) -> list[ItemRow]:
    rows = db.session.execute(
        select(SepaBatchItem, Invoice, Customer)
        .join(Invoice, Invoice.id == SepaBatchItem.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(SepaBatchItem.batch_id == batch.id)
        .order_by(SepaBatchItem.id)
    )
    return [ItemRow(item, invoice, customer) for item, invoice, customer in rows]


@dataclass
class CollectionRow:
    collection: Collection
    invoice: Invoice
    customer: Customer


ATTENTION_LIMIT = 200


def collections_with_status(entity: LegalEntity, statuses: tuple[str, ...]) -> list[CollectionRow]:
    """The entity's collections in these states: those waiting longest first."""
    return _collections(entity, Collection.status.in_(statuses))


def collections_needing_attention(entity: LegalEntity) -> list[CollectionRow]:
    """What a person must decide on (app.payments.collection.needs_attention), failed and flagged first."""
    return _collections(entity, needs_attention(), first=case((Collection.status == "waiting", 1), else_=0))


def _collections(entity: LegalEntity, condition, first=None) -> list[CollectionRow]:
    rows = db.session.execute(
        select(Collection, Invoice, Customer)
        .join(Invoice, Invoice.id == Collection.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.legal_entity_id == entity.id, condition)
        .order_by(*([first] if first is not None else []), Collection.next_retry_on, Collection.updated_at,
                  Collection.id)
        .limit(ATTENTION_LIMIT)
    )
    return [CollectionRow(collection, invoice, customer) for collection, invoice, customer in rows]
