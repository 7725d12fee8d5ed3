"""Invoice documents: the PDF/A-3b with the embedded EN 16931 (Factur-X) e-invoice.

    build_cii_xml(invoice) -> bytes                  einvoice.py: the XML, XSD-checked
    render_pdf(invoice, xml=None) -> bytes           pdf.py: HTML → PDF/A-3b, XML embedded
    get_or_render_document(invoice) -> InvoiceDocument   service.py: rendered once, stored
"""
