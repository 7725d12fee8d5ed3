"""Invoice documents: the PDF/A-3b with the embedded EN 16931 (Factur-X) e-invoice.

    build_cii_xml(invoice) -> bytes                  einvoice.py: the XML, XSD-checked
    render_pdf(invoice, xml=None) -> bytes           pdf.py: HTML → PDF/A-3b, XML embedded
    check_einvoice(xml, label) -> list[Finding]      validation.py: XSD + EN 16931 schematron (Saxon)
    check_printable(invoice, html)                   glyphs.py: every character has a glyph in the fonts
    get_or_render_document(invoice) -> InvoiceDocument   service.py: checked, rendered once, stored
"""
