"""Reading ISO 20022 XML safely and by path: the helpers the bank answers (pain.002, camt.054) and the
statements (camt.053) share. No network, no entities, no huge trees: a file from outside is data only."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from io import BytesIO
from functools import lru_cache

from lxml import etree

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"

# What an ISO 20022 message is, in the words of the person who picked the wrong file.
MESSAGES = {
    "camt.052": "an intraday account report (camt.052)",
    "camt.053": "a bank statement (camt.053)",
    "camt.054": "a debit/credit notification (camt.054)",
    "pain.001": "a credit transfer order (pain.001)",
    "pain.002": "a payment status report (pain.002)",
    "pain.008": "a SEPA direct debit file (pain.008)",
    "pacs.002": "an interbank payment status report (pacs.002)",
    "pacs.008": "an interbank credit transfer (pacs.008)",
}


def parse(data: bytes) -> etree._Element:
    """The root element; raises etree.XMLSyntaxError for a file that is not (complete) XML."""
    return etree.fromstring(data, PARSER)


def iterparse(data: bytes, events: tuple[str, ...], tag=None):
    """(event, element) pairs as the document is read, with PARSER's safety; raises etree.XMLSyntaxError."""
    return etree.iterparse(BytesIO(data), events=events, tag=tag, resolve_entities=False, no_network=True,
                           load_dtd=False, huge_tree=False)


def namespace(root: etree._Element) -> str:
    return root.tag.partition("}")[0].lstrip("{") if root.tag.startswith("{") else ""


def message_name(root: etree._Element) -> str | None:
    """`camt.053.001.08` for an ISO 20022 document in that namespace, else None."""
    found = namespace(root)
    return found[len(_PREFIX):] if found.startswith(_PREFIX) else None


def describe(name: str | None) -> str:
    """`a SEPA direct debit file (pain.008.001.08)` — what a message is, for an error."""
    if not name:
        return "an XML file that is not an ISO 20022 message"
    words = MESSAGES.get(name[:8])
    return f"{words[:-len(name[:8]) - 2]}({name})" if words else f"an ISO 20022 {name} message"


@lru_cache(maxsize=512)
def q(ns: str, path: str) -> str:
    """An ElementPath in namespace `ns`: q(ns, "Refs/EndToEndId")."""
    return "/".join(f"{{{ns}}}{part}" for part in path.split("/"))


def text(element, ns: str, path: str) -> str:
    """The stripped text at `path` below `element`, "" when absent."""
    found = element.find(q(ns, path))
    return (found.text or "").strip() if found is not None else ""


def amount(element, ns: str, path: str) -> tuple[Decimal | None, str | None]:
    """The amount and its Ccy attribute at `path`; (None, ccy) when the text is not a number."""
    found = element.find(q(ns, path))
    if found is None:
        return None, None
    try:
        return Decimal((found.text or "").strip()), found.get("Ccy")
    except InvalidOperation:
        return None, found.get("Ccy")
