"""The stored invoice document: rendered once per posted invoice, then always the same bytes.

A posted invoice never changes its content, so its PDF/A-3 (with the embedded e-invoice) is
rendered the first time someone needs it — the Invoice Delivery Agent, a download, the CLI — and
kept in `invoice_documents`. Only a document that passes the checks is stored: its XML against the
XSD and the EN 16931 schematron (validation.py; the warnings are stored with it), its text against
the fonts (glyphs.py). A failed check raises DocumentError and stores nothing, so once the cause is
corrected the next attempt renders again. Writes happen in the caller's transaction (flush; the caller commits).
"""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.documents.einvoice import build_cii_xml
from app.transactions import transactional
from app.documents.facts import POSTED_STATUSES
from app.documents.pdf import render_pdf
from app.documents.validation import check_einvoice
from app.errors import DocumentError
from app.extensions import db
from app.models import Invoice, InvoiceDocument


def stored_document(invoice_id: int) -> InvoiceDocument | None:
    return db.session.scalar(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id))


def get_or_render_document(invoice: Invoice) -> InvoiceDocument:
    """The invoice's stored document, rendering and storing it first if there is none.

    Raises DocumentError for a draft, an e-invoice with a fatal EN 16931 finding (EInvoiceRejected)
    and text no font prints (MissingGlyph). Two workers racing on the same invoice both render, one
    insert wins (unique invoice_id) and both return the stored row.
    """
    document = stored_document(invoice.id)
    if document is not None:
        return document
    if invoice.status == "draft":
        raise DocumentError("invoice is a draft: post it first")
    if invoice.status not in POSTED_STATUSES:
        raise DocumentError(f"invoice {invoice.number} is {invoice.status}: only posted invoices have a document")
    xml = build_cii_xml(invoice)
    warnings = check_einvoice(xml, f"invoice {invoice.number}")
    pdf = render_pdf(invoice, xml=xml)
    document = InvoiceDocument(invoice_id=invoice.id, pdf=pdf, xml=xml, sha256=hashlib.sha256(pdf).hexdigest(),
                               findings=[finding.as_dict() for finding in warnings])
    savepoint = db.session.begin_nested()
    try:
        db.session.add(document)
        db.session.flush()
        savepoint.commit()
    except IntegrityError:  # another worker stored it meanwhile: theirs is the document
        savepoint.rollback()
        document = stored_document(invoice.id)
        if document is None:
            raise
    return document


def checked_document(invoice: Invoice) -> InvoiceDocument:
    """The document as get_or_render_document gives it, also checked if it was stored before documents were
    checked (no findings recorded): what the Invoice Delivery Agent sends. Raises EInvoiceRejected for such a
    document with a fatal finding (it stays stored: a stored document never changes); else its findings are
    recorded (the caller commits)."""
    document = get_or_render_document(invoice)
    if document.findings is None:
        document.findings = [finding.as_dict() for finding in check_einvoice(document.xml, f"invoice {invoice.number}")]
    return document


@transactional
def document_for_download(invoice: Invoice) -> InvoiceDocument:
    """get_or_render_document as a unit of work of its own (a person downloads the PDF): a first render is kept."""
    return get_or_render_document(invoice)
