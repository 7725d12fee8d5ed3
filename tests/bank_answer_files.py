"""pain.002 and camt.054 documents as a bank writes them, for the tests; `valid()` checks them against the
ISO 20022 schemas in tests/data/iso20022 (see its README for where they come from)."""
from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

SCHEMAS = Path(__file__).parent / "data" / "iso20022"


@cache
def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{name}.xsd")))


def valid(xml: bytes, name: str) -> bool:
    """True when the document validates against the schema `name` (e.g. pain.002.001.11); else raises."""
    _schema(name).assertValid(etree.fromstring(xml))
    return True


def pain002(message_id: str, transactions: list[dict] = (), *, version: str = "11", group_status: str | None = None,
            group_reason: str | None = None, created: str = "2026-12-01T09:30:00",
            payment_statuses: list[tuple[str, str, str | None]] = ()) -> bytes:
    """A customer payment status report. Each transaction: end_to_end_id, status (ACSC, RJCT, ...) and
    optionally reason, amount, collection_date, creditor_id, creditor_iban."""
    group = ""
    if group_status:
        reason = f"<StsRsnInf><Rsn><Cd>{group_reason}</Cd></Rsn></StsRsnInf>" if group_reason else ""
        group = f"<GrpSts>{group_status}</GrpSts>{reason}"
    payments = ""
    if transactions:
        rows = "".join(_pain002_tx(n, tx) for n, tx in enumerate(transactions, start=1))
        payments = f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{escape(message_id)}-1</OrgnlPmtInfId>{rows}</OrgnlPmtInfAndSts>"
    for payment_info_id, status, reason in payment_statuses:  # (OrgnlPmtInfId, PmtInfSts, reason code): no transactions
        why = f"<StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn></StsRsnInf>" if reason else ""
        payments += (f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{escape(payment_info_id)}</OrgnlPmtInfId>"
                     f"<PmtInfSts>{status}</PmtInfSts>{why}</OrgnlPmtInfAndSts>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}">\n'
            f'<CstmrPmtStsRpt>\n'
            f'<GrpHdr><MsgId>STS-{escape(message_id)}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\n'
            f'<OrgnlGrpInfAndSts><OrgnlMsgId>{escape(message_id)}</OrgnlMsgId>'
            f'<OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>{group}</OrgnlGrpInfAndSts>\n'
            f'{payments}\n'
            f'</CstmrPmtStsRpt>\n</Document>\n').encode()


def _pain002_tx(n: int, tx: dict) -> str:
    reason = f"<StsRsnInf><Rsn><Cd>{tx['reason']}</Cd></Rsn></StsRsnInf>" if tx.get("reason") else ""
    reference = ""
    if tx.get("amount") or tx.get("collection_date") or tx.get("creditor_iban") or tx.get("creditor_id"):
        amount = f'<Amt><InstdAmt Ccy="EUR">{tx["amount"]}</InstdAmt></Amt>' if tx.get("amount") else ""
        day = f"<ReqdColltnDt>{tx['collection_date']}</ReqdColltnDt>" if tx.get("collection_date") else ""
        scheme = (f"<CdtrSchmeId><Id><PrvtId><Othr><Id>{tx['creditor_id']}</Id><SchmeNm><Prtry>SEPA</Prtry>"
                  f"</SchmeNm></Othr></PrvtId></Id></CdtrSchmeId>" if tx.get("creditor_id") else "")
        account = (f"<CdtrAcct><Id><IBAN>{tx['creditor_iban']}</IBAN></Id></CdtrAcct>"
                   if tx.get("creditor_iban") else "")
        reference = f"<OrgnlTxRef>{amount}{day}{scheme}{account}</OrgnlTxRef>"
    return (f"\n<TxInfAndSts><StsId>ST-{n}</StsId>"
            f"\n<OrgnlEndToEndId>{escape(tx['end_to_end_id'])}</OrgnlEndToEndId>"
            f"<TxSts>{tx['status']}</TxSts>{reason}{reference}</TxInfAndSts>")


def camt054(iban: str, entries: list[dict], *, version: str = "08") -> bytes:
    """A debit/credit notification for the account `iban`. Each entry: amount, side (CRDT/DBIT), booked
    (date), end_to_end_id, and optionally family (IDDT by default), status (BOOK), return_reason, reversal."""
    rows = "".join(_camt054_entry(entry, version) for entry in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.{version}">\n'
            f'<BkToCstmrDbtCdtNtfctn>\n'
            f'<GrpHdr><MsgId>NTF-20261201-1</MsgId><CreDtTm>2026-12-01T18:00:00</CreDtTm></GrpHdr>\n'
            f'<Ntfctn><Id>NTF-20261201-1-1</Id><CreDtTm>2026-12-01T18:00:00</CreDtTm>'
            f'<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>{rows}\n</Ntfctn>\n'
            f'</BkToCstmrDbtCdtNtfctn>\n</Document>\n').encode()


def _camt054_entry(entry: dict, version: str) -> str:
    status = entry.get("status", "BOOK")
    status_xml = f"<Sts><Cd>{status}</Cd></Sts>" if version == "08" else f"<Sts>{status}</Sts>"
    amount = Decimal(entry["amount"])
    reversal = "<RvslInd>true</RvslInd>" if entry.get("reversal") else ""
    family = entry.get("family", "IDDT")
    sub_family = "ESDD" if family == "IDDT" else "ESCT"
    mandate = f"<MndtId>{entry['mandate']}</MndtId>" if entry.get("mandate") else ""
    returned = (f"<RtrInf><Rsn><Cd>{entry['return_reason']}</Cd></Rsn></RtrInf>"
                if entry.get("return_reason") else "")
    return (f'\n<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{entry["side"]}</CdtDbtInd>{reversal}{status_xml}'
            f'<BookgDt><Dt>{entry["booked"]}</Dt></BookgDt><ValDt><Dt>{entry["booked"]}</Dt></ValDt>'
            f'<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn>'
            f'</BkTxCd>'
            f'<NtryDtls><TxDtls>'
            f'\n<Refs><EndToEndId>{escape(entry["end_to_end_id"])}</EndToEndId>{mandate}</Refs>'
            + (f'<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{entry["side"]}</CdtDbtInd>' if version == "08"
               else f'<AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>')  # .02 has no TxDtls/Amt
            + f'{returned}</TxDtls></NtryDtls></Ntry>')
