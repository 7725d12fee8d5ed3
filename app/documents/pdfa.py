"""The Factur-X container: WeasyPrint writes the PDF/A-3b with the e-invoice XML attached, in one pass.

What factur-x's `generate_from_file` added to WeasyPrint's PDF/A-3b in a second read/write pass
(pypdf), WeasyPrint writes itself:

- factur-x.xml as an embedded file (/Subtype text/xml, /Params with /CheckSum, /Size and dates),
  its file specification with /AFRelationship /Data, listed in the catalog's /AF array and
  /Names /EmbeddedFiles (WeasyPrint's `pdf/a-3b` variant does the /AF and /AFRelationship);
- the XMP metadata with pdfaid part 3 / conformance B, dc:title, dc:creator, dc:description,
  pdf:Keywords, xmp:CreatorTool and dates from the document's <head> (WeasyPrint), plus the
  Factur-X PDF/A extension schema and its fx: properties (DocumentType INVOICE,
  DocumentFileName factur-x.xml, Version 1.0, ConformanceLevel EN 16931), as factur-x writes them;
- the document information (/Title, /Author, /Subject, /Keywords, /Creator, dates, /Lang) from the
  same <head>, so that it matches the XMP as PDF/A requires; /PageMode /UseAttachments.

tests/integration/test_documents.py reads the result back with factur-x and pypdf.
"""
from __future__ import annotations

from datetime import datetime, timezone
from xml.etree.ElementTree import SubElement, fromstring, register_namespace, tostring

import pydyf
from weasyprint import Attachment, Document
from weasyprint.pdf.metadata import NS as WEASYPRINT_NS
from weasyprint.pdf.metadata import DocumentMetadata

from app.documents.einvoice import LEVEL, XRECHNUNG_GUIDELINE

PDF_VARIANT = "pdf/a-3b"
XML_FILENAME, XML_DESCRIPTION = "factur-x.xml", "Factur-X XML file"
# What factur-x 7.8 writes for a Factur-X invoice (generate_xmp_bytes, FACTURX_LEVEL2xmp)
FX = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
XMP_LEVEL = {"en16931": "EN 16931"}[LEVEL]
FX_PROPERTIES = {  # name: (value, description in the extension schema)
    "DocumentType": ("INVOICE", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    "DocumentFileName": (XML_FILENAME, "The name of the embedded XML document"),
    "Version": ("1.0", "The actual version of the standard applying to the embedded XML document"),
    "ConformanceLevel": (XMP_LEVEL, "The conformance level of the embedded XML document"),
}

RDF = WEASYPRINT_NS["rdf"]
NS = {
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "fx": FX,
}
for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)


def _element(parent, tag: str, text: str | None = None, **attributes: str):
    prefix, name = tag.split(":")
    uri = RDF if prefix == "rdf" else NS[prefix]
    element = SubElement(parent, f"{{{uri}}}{name}", {f"{{{RDF}}}{k}": v for k, v in attributes.items()})
    element.text = text
    return element


def _facturx_descriptions(rdf, level: str = XMP_LEVEL) -> None:
    """Append the Factur-X extension schema and its fx: values to the rdf:RDF element `rdf`."""
    description = _element(rdf, "rdf:Description", about="")
    schema = _element(_element(_element(description, "pdfaExtension:schemas"), "rdf:Bag"), "rdf:li",
                      parseType="Resource")
    _element(schema, "pdfaSchema:schema", "Factur-X PDFA Extension Schema")
    _element(schema, "pdfaSchema:namespaceURI", FX)
    _element(schema, "pdfaSchema:prefix", "fx")
    properties = _element(_element(schema, "pdfaSchema:property"), "rdf:Seq")
    for name, (_value, meaning) in FX_PROPERTIES.items():
        item = _element(properties, "rdf:li", parseType="Resource")
        _element(item, "pdfaProperty:name", name)
        _element(item, "pdfaProperty:valueType", "Text")
        _element(item, "pdfaProperty:category", "external")
        _element(item, "pdfaProperty:description", meaning)
    values = _element(rdf, "rdf:Description", about="")
    for name, (value, _meaning) in FX_PROPERTIES.items():
        _element(values, f"fx:{name}", level if name == "ConformanceLevel" else value)


def _pdfaid_as_elements(rdf) -> None:
    """pdfaid:part and pdfaid:conformance as elements, as factur-x writes them, not attributes.

    The same RDF either way; the element form is what most Factur-X readers look for.
    """
    pdfaid = WEASYPRINT_NS["pdfaid"]
    for description in rdf.iter(f"{{{RDF}}}Description"):
        for name in ("part", "conformance"):
            value = description.attrib.pop(f"{{{pdfaid}}}{name}", None)
            if value is not None:
                SubElement(description, f"{{{pdfaid}}}{name}").text = value


class FacturXMetadata(DocumentMetadata):
    """WeasyPrint's document metadata, whose XMP also carries the Factur-X extension schema."""

    level = XMP_LEVEL  # fx:ConformanceLevel

    def generate_rdf_metadata(self, variant, version, conformance):
        rdf = fromstring(super().generate_rdf_metadata(variant, version, conformance))
        _pdfaid_as_elements(rdf)
        _facturx_descriptions(rdf, self.level)
        return tostring(rdf, encoding="utf-8")


def write_facturx_pdf(document: Document, xml: bytes) -> bytes:
    """The PDF/A-3b of a rendered `document` with `xml` embedded as its Factur-X e-invoice."""
    metadata = document.metadata
    document.metadata = FacturXMetadata(**vars(metadata))
    if XRECHNUNG_GUIDELINE.encode() in xml:  # ZUGFeRD's profile XRECHNUNG: the EN 16931 XML under XRechnung's CIUS
        document.metadata.level = "XRECHNUNG"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # The document's URL fetcher: nothing is fetched, but Attachment would otherwise build a
    # urllib opener of its own for every invoice (0.4 ms).
    attachment = Attachment(string=xml, name=XML_FILENAME, description=XML_DESCRIPTION, relationship="Data",
                            created=now, modified=now, url_fetcher=document.url_fetcher)
    return document.write_pdf(pdf_variant=PDF_VARIANT, attachments=[attachment], finisher=_finish)


def _finish(_document: Document, pdf) -> None:
    """Open the attachments pane, as factur-x does; list each attachment once in /AF; serialize once."""
    pdf.catalog["PageMode"] = "/UseAttachments"
    # WeasyPrint 70's PDF/A variant adds each file specification to /AF twice (once from
    # /EmbeddedFiles, once from the /Filespec objects): keep the first of each.
    references = pdf.catalog.get("AF")
    if references is not None:
        unique = list(dict.fromkeys(references))
        references.clear()
        references.extend(unique)
    _serialize_once(pdf)


# pydyf's `write` serializes every object twice when the PDF has a file identifier (PDF/A needs
# one): once for the file, once more for the MD5 the identifier is made of. Each stream is then
# zlib-compressed twice at level 9: 3 ms of a 50 ms render. Nothing changes the objects after the
# finisher, so each object keeps the bytes it gave the first time; the file is byte for byte the same.
_SERIALIZED_ONCE: dict[type, type] = {}


def _serialize_once(pdf) -> None:
    for pdf_object in pdf.objects:
        cls = type(pdf_object)
        if not isinstance(pdf_object, pydyf.Object) or cls in _SERIALIZED_ONCE.values():
            continue
        once = _SERIALIZED_ONCE.get(cls)
        if once is None:
            once = _SERIALIZED_ONCE[cls] = type(f"{cls.__name__}SerializedOnce", (cls,), {
                "data": property(_data_once(cls.data.fget)), "__module__": __name__})
        pdf_object.__class__ = once


def _data_once(data):
    def serialized(self) -> bytes:
        cached = self.__dict__.get("_serialized")
        if cached is None:
            cached = self.__dict__["_serialized"] = data(self)
        return cached

    return serialized
