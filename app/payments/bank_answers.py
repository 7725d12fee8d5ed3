"""The bank's answer to a SEPA batch as ISO 20022 XML: a pain.002 status report or a camt.054 notification.

Reading only: no database. Each answer names the debit by its end-to-end id and says what the bank did
(`collected`, `returned` with an ISO reason, or `accepted`: received and not yet settled, which changes
nothing). `app/payments/results.py` checks the answers against our debits and applies them, exactly as
it does a CSV row. Problems are `line N: element: reason`, N being the line of the XML element.

- pain.002 (.001.03, .001.10, .001.11): transaction status TxSts, or the group / payment-information status
  when the report carries no transactions (then it speaks for every debit of the batch in OrgnlMsgId).
  ACSC → collected; ACCP, ACSP, ACTC, ACWC, PDNG, RCVD → accepted; RJCT → returned with StsRsnInf/Rsn/Cd.
- camt.054 (.001.02, .001.08): booked entries (Sts BOOK) of the account; a transaction that is a direct
  debit of ours (bank transaction family IDDT, or one that carries a mandate id) must have our end-to-end
  id: CRDT → collected on the booking date; DBIT, a reversal (RvslInd) or return information (RtrInf)
  → returned with RtrInf/Rsn/Cd. Other transactions (a customer's transfer) are left to reconciliation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from app.banking.iso20022 import amount as _amount, namespace as _ns, parse, q as _q, text as _text
from app.errors import NotAnAnswer

FORMATS = ("csv", "pain002", "camt054")
_NAMESPACES = {
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03": "pain002",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10": "pain002",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11": "pain002",
    "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02": "camt054",
    "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08": "camt054",
}
READ = "pain.002.001.03/.10/.11 and camt.054.001.02/.08"
_ACCEPTED = {"ACCP", "ACSP", "ACTC", "ACWC", "PDNG", "RCVD"}

# The ISO 20022 external status reason codes a SEPA direct debit meets most (EPC rulebook, R-transactions).
REASONS = {
    "AC01": "incorrect account number", "AC04": "account closed", "AC06": "account blocked",
    "AC13": "debtor account is a consumer account", "AG01": "transaction forbidden on this account",
    "AG02": "invalid bank operation code", "AM04": "insufficient funds", "AM05": "duplicate collection",
    "BE05": "creditor not recognised", "CNOR": "creditor bank not registered",
    "DNOR": "debtor bank not registered", "DUPL": "duplicate payment", "FF01": "invalid file format",
    "FOCR": "returned after a cancellation request", "MD01": "no mandate", "MD02": "mandate data missing or wrong",
    "MD06": "refund requested by the debtor", "MD07": "debtor deceased", "MS02": "refused by the debtor",
    "MS03": "reason not specified by the bank", "RC01": "bank identifier (BIC) incorrect",
    "RR01": "debtor account or identification missing", "RR02": "debtor name or address missing",
    "RR03": "creditor name or address missing", "RR04": "regulatory reason", "SL01": "service of the debtor's bank",
    "TM01": "received after the cut-off time",
}


@dataclass
class Answer:
    """One debit's answer as the file says it; `iban`/`message_id` are what the file claims, for checking."""
    line: int
    element: str            # where the end-to-end id is, for "line N: element: ..."
    end_to_end_id: str
    outcome: str            # collected | returned | accepted
    date_text: str          # ISO date
    reason: str = ""
    message_id: str | None = None   # pain.002: OrgnlMsgId (our pain.008's MsgId)
    iban: str | None = None          # the creditor account the file speaks of
    creditor_id: str | None = None   # pain.002: the SEPA creditor identifier of the original debit
    amount: Decimal | None = None
    currency: str | None = None
    whole_batch: bool = False        # a status without transactions: every debit of message_id ...
    payment_info_id: str | None = None  # ... or of this payment-information block of it (OrgnlPmtInfId)


def reason_text(code: str, extra: str = "") -> str:
    """`AM04 insufficient funds`: the code and its words (or the bank's own words for an unknown code)."""
    code = (code or "").strip().upper()
    if not code:
        return (extra or "").strip() or "no reason code given by the bank"
    words = REASONS.get(code) or (extra or "").strip() or "reason code not known to Arbill"
    return f"{code} {words}".strip()


def detect(data: bytes) -> str:
    """`csv`, `pain002` or `camt054` from the content; raises NotAnAnswer for XML Arbill does not read."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head != b"<":
        return "csv"
    return _format(_root(data))


def read(data: bytes, expected: str | None = None) -> tuple[str, list[Answer]]:
    """The format and answers of an XML file; raises NotAnAnswer naming every problem found."""
    root = _root(data)
    found = _format(root)
    if expected and expected != found:
        raise NotAnAnswer([f"line {root.sourceline}: Document: the file is a {found} but --format {expected} "
                           f"was asked for"])
    errors: list[str] = []
    answers = (_pain002 if found == "pain002" else _camt054)(root, _ns(root), errors)
    if errors:
        raise NotAnAnswer(errors)
    if not answers:
        raise NotAnAnswer([f"line {root.sourceline}: Document: the file answers none of our direct debits"])
    return found, answers


# ------------------------------------------------------------------ parsing
def _root(data: bytes) -> etree._Element:
    try:
        return parse(data)
    except etree.XMLSyntaxError as error:
        line = error.lineno or 1
        raise NotAnAnswer([f"line {line}: Document: not well-formed XML, the file may be cut off "
                           f"({error.msg}); nothing was recorded"]) from None


def _format(root: etree._Element) -> str:
    namespace = _ns(root)
    found = _NAMESPACES.get(namespace)
    if found is None or etree.QName(root).localname != "Document":
        shown = namespace or "no namespace"
        raise NotAnAnswer([f"line {root.sourceline}: Document: an XML file in {shown} is not a bank answer "
                           f"Arbill reads ({READ}, or the CSV end_to_end_id,outcome,date,reason)"])
    return found


def _date_of(text: str) -> str:
    return text[:10]


def _reason(element, namespace: str, path: str) -> str:
    return reason_text(_text(element, namespace, f"{path}/Rsn/Cd") or _text(element, namespace, f"{path}/Rsn/Prtry"),
                       _text(element, namespace, f"{path}/AddtlInf"))


def _status(code: str) -> str | None:
    return "collected" if code == "ACSC" else "returned" if code == "RJCT" else \
        "accepted" if code in _ACCEPTED else None


def _pain002(root, ns: str, errors: list[str]) -> list[Answer]:
    report = root.find(_q(ns, "CstmrPmtStsRpt"))
    if report is None:
        errors.append(f"line {root.sourceline}: CstmrPmtStsRpt: missing")
        return []
    created = _date_of(_text(report, ns, "GrpHdr/CreDtTm"))
    group = report.find(_q(ns, "OrgnlGrpInfAndSts"))
    message_id = _text(group, ns, "OrgnlMsgId") if group is not None else ""
    answers: list[Answer] = []
    transactions = report.findall(_q(ns, "OrgnlPmtInfAndSts/TxInfAndSts"))
    for tx in transactions:
        code = _text(tx, ns, "TxSts")
        outcome = _status(code)
        end_to_end_id = _text(tx, ns, "OrgnlEndToEndId")
        if outcome is None:
            where = tx.find(_q(ns, "TxSts"))
            errors.append(f"line {(where if where is not None else tx).sourceline}: TxSts: {code or 'no status'} is not a transaction status "
                          f"Arbill knows (ACSC, ACCP, ACSP, ACTC, ACWC, PDNG, RCVD, RJCT)")
            continue
        amount, currency = _amount(tx, ns, "OrgnlTxRef/Amt/InstdAmt")
        collected_on = _text(tx, ns, "OrgnlTxRef/ReqdColltnDt")
        answers.append(Answer(
            line=(tx.find(_q(ns, "OrgnlEndToEndId")) if tx.find(_q(ns, "OrgnlEndToEndId")) is not None
                  else tx).sourceline, element="OrgnlEndToEndId", end_to_end_id=end_to_end_id, outcome=outcome,
            date_text=(collected_on or created) if outcome == "collected" else created,
            reason=_reason(tx, ns, "StsRsnInf") if outcome == "returned" else "", message_id=message_id or None,
            iban=_text(tx, ns, "OrgnlTxRef/CdtrAcct/Id/IBAN") or None, amount=amount, currency=currency,
            creditor_id=_text(tx, ns, "OrgnlTxRef/CdtrSchmeId/Id/PrvtId/Othr/Id") or None))
    if transactions:
        return answers
    # No transactions: each payment-information status speaks for the debits of its block of our message,
    # else the group status for the whole message.
    blocks = [holder for holder in report.findall(_q(ns, "OrgnlPmtInfAndSts")) if _text(holder, ns, "PmtInfSts")]
    for holder, path in ([(holder, "PmtInfSts") for holder in blocks] or [(group, "GrpSts")]):
        if holder is None or not _text(holder, ns, path):
            continue
        code = _text(holder, ns, path)
        outcome = _status(code)
        if outcome is None:
            errors.append(f"line {holder.sourceline}: {path}: {code} is not a status Arbill knows")
            continue
        answers.append(Answer(line=holder.sourceline, element=path, end_to_end_id="", outcome=outcome,
                              date_text=created, reason=_reason(holder, ns, "StsRsnInf") if outcome == "returned" else "",
                              message_id=message_id or None, whole_batch=True,
                              payment_info_id=_text(holder, ns, "OrgnlPmtInfId") if path == "PmtInfSts" else None))
    if answers or errors:
        return answers
    errors.append(f"line {report.sourceline}: CstmrPmtStsRpt: the report has no group, payment or transaction status")
    return []


_NOT_PROVIDED = re.compile(r"^\s*(NOTPROVIDED)?\s*$", re.IGNORECASE)


def _camt054(root, ns: str, errors: list[str]) -> list[Answer]:
    answers: list[Answer] = []
    notifications = root.findall(_q(ns, "BkToCstmrDbtCdtNtfctn/Ntfctn"))
    for notification in notifications:
        iban = _text(notification, ns, "Acct/Id/IBAN") or None
        for entry in notification.findall(_q(ns, "Ntry")):
            status = _text(entry, ns, "Sts/Cd") or _text(entry, ns, "Sts")
            if status != "BOOK":
                continue  # pending or information only: the money has not moved yet
            booked = _date_of(_text(entry, ns, "BookgDt/Dt") or _text(entry, ns, "BookgDt/DtTm"))
            entry_side = _text(entry, ns, "CdtDbtInd")
            reversal = _text(entry, ns, "RvslInd").lower() == "true"
            family = _text(entry, ns, "BkTxCd/Domn/Fmly/Cd")
            details = entry.findall(_q(ns, "NtryDtls/TxDtls"))
            for tx in details:
                end_to_end_id = _text(tx, ns, "Refs/EndToEndId")
                ours = family == "IDDT" or bool(_text(tx, ns, "Refs/MndtId"))
                if not ours or _NOT_PROVIDED.match(end_to_end_id):
                    continue  # not one of our collections: bank-statement reconciliation's business
                side = _text(tx, ns, "CdtDbtInd") or entry_side
                returned = reversal or side == "DBIT" or tx.find(_q(ns, "RtrInf")) is not None
                amount, currency = _amount(tx, ns, "Amt")
                if amount is None:
                    amount, currency = _amount(tx, ns, "AmtDtls/TxAmt/Amt")
                if amount is None and len(details) == 1:
                    amount, currency = _amount(entry, ns, "Amt")
                reference = tx.find(_q(ns, "Refs/EndToEndId"))
                answers.append(Answer(
                    line=reference.sourceline, element="EndToEndId", end_to_end_id=end_to_end_id,
                    outcome="returned" if returned else "collected", date_text=booked,
                    reason=(_reason(tx, ns, "RtrInf") if tx.find(_q(ns, "RtrInf")) is not None
                            else "reversed by the bank" if returned else ""),
                    iban=iban, amount=amount, currency=currency))
    if not notifications:
        errors.append(f"line {root.sourceline}: Ntfctn: the file holds no notification")
    return answers
