"""Bank statement files written from simple dicts, as banks send them: for the tests, the demo and bench/.

An entry is a dict with the `Entry` field names: amount (positive), direction ("credit"/"debit"),
booking_date, and optionally value_date, currency, reversal, bank_reference, end_to_end_id,
creditor_reference, remittance, counterparty_name/_iban/_bic, return_reason, bank_transaction_code; camt.053
also takes status ("BOOK", "PDNG", ...) and transactions (a list of such dicts without dates: a batch
booking, whose entry amount is their sum). Dates are `date`s or ISO strings; amounts Decimals or strings.
Files are built as strings (10,000 entries in a few tens of milliseconds), never as trees.
"""
from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape


def _money(value) -> Decimal:
    return Decimal(str(value))


def _iso(day) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)


def _signed(entry: dict) -> Decimal:
    """The entry's amount, negative for a debit; a batch booking's is the sum of its transactions."""
    if entry.get("transactions"):
        return sum((_signed({"direction": entry["direction"], **t}) for t in entry["transactions"]), Decimal(0))
    return _money(entry["amount"]) * (1 if entry["direction"] == "credit" else -1)


def closing_balance(entries: list[dict], opening_balance=Decimal(0)) -> Decimal:
    """The opening balance moved by the booked entries (what a statement's closing balance says)."""
    return _money(opening_balance) + sum((_signed(e) for e in entries if e.get("status", "BOOK") == "BOOK"),
                                         Decimal(0))


# ------------------------------------------------------------------ camt.053
def camt053(entries: list[dict], *, version: str = "08", account_iban: str = "DE89370400440532013000",
            currency: str = "EUR", statement_id: str = "STMT-2026-12-01", opening_balance=Decimal(0),
            created: str = "2026-12-01T18:00:00", from_date=None, to_date=None, sequence: int | None = 1,
            message_id: str | None = None, more_statements: list[dict] = ()) -> bytes:
    """A camt.053.001.<version> (02 or 08) document with one statement of `entries` on `account_iban`;
    `more_statements` (dicts of the same keyword arguments plus entries) add Stmt elements to the file."""
    if version not in ("02", "08"):
        raise ValueError("version is 02 or 08")
    first = dict(entries=entries, account_iban=account_iban, currency=currency, statement_id=statement_id,
                 opening_balance=opening_balance, created=created, from_date=from_date, to_date=to_date,
                 sequence=sequence)
    statements = "".join(_statement(version, {**first, **more}) for more in [{}, *more_statements])
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">\n<BkToCstmrStmt>\n'
            f'<GrpHdr><MsgId>{escape(message_id or "MSG-" + statement_id)}</MsgId>'
            f'<CreDtTm>{created}</CreDtTm></GrpHdr>\n{statements}</BkToCstmrStmt>\n</Document>\n').encode()


def _statement(version: str, s: dict) -> str:
    entries, currency = s["entries"], s["currency"]
    days = [_iso(e["booking_date"]) for e in entries]
    start, end = _iso(s["from_date"] or min(days, default=s["created"][:10])), \
        _iso(s["to_date"] or max(days, default=s["created"][:10]))
    sequence = f"<ElctrncSeqNb>{s['sequence']}</ElctrncSeqNb>" if s["sequence"] is not None else ""
    opening = _money(s["opening_balance"])
    rows = "".join(_entry(version, e, currency, s["account_iban"]) for e in entries)
    return (f"<Stmt><Id>{escape(s['statement_id'])}</Id>{sequence}<CreDtTm>{s['created']}</CreDtTm>"
            f"<FrToDt><FrDtTm>{start}T00:00:00</FrDtTm><ToDtTm>{end}T23:59:59</ToDtTm></FrToDt>\n"
            f"<Acct><Id><IBAN>{s['account_iban']}</IBAN></Id><Ccy>{currency}</Ccy></Acct>\n"
            f"{_bal('OPBD', opening, currency, start)}{_bal('CLBD', closing_balance(entries, opening), currency, end)}"
            f"{rows}</Stmt>\n")


def _bal(code: str, value: Decimal, currency: str, day: str) -> str:
    side = "DBIT" if value < 0 else "CRDT"
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{currency}\">{abs(value):f}</Amt>"
            f"<CdtDbtInd>{side}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>\n")


def _side(direction: str) -> str:
    return "CRDT" if direction == "credit" else "DBIT"


def _code(entry: dict) -> str:
    code = entry.get("bank_transaction_code") or (
        "PMNT/RCDT/ESCT" if entry["direction"] == "credit" else
        "PMNT/IDDT/UPDD" if entry.get("return_reason") else "PMNT/ICDT/ESCT")
    parts = code.split("/")
    if len(parts) == 3:
        return (f"<BkTxCd><Domn><Cd>{parts[0]}</Cd><Fmly><Cd>{parts[1]}</Cd><SubFmlyCd>{parts[2]}</SubFmlyCd>"
                f"</Fmly></Domn></BkTxCd>")
    return f"<BkTxCd><Prtry><Cd>{escape(code)}</Cd></Prtry></BkTxCd>"


def _entry(version: str, entry: dict, currency: str, account_iban: str) -> str:
    currency = entry.get("currency", currency)
    transactions = entry.get("transactions")
    value = abs(_signed(entry))
    status = entry.get("status", "BOOK")
    status = f"<Sts>{status}</Sts>" if version == "02" else f"<Sts><Cd>{status}</Cd></Sts>"
    reversal = "<RvslInd>true</RvslInd>" if entry.get("reversal") else ""
    booked = _iso(entry["booking_date"])
    valued = f"<ValDt><Dt>{_iso(entry['value_date'])}</Dt></ValDt>" if entry.get("value_date") else ""
    reference = (f"<AcctSvcrRef>{escape(entry['bank_reference'])}</AcctSvcrRef>"
                 if entry.get("bank_reference") else "")
    details = "".join(_transaction(version, {"direction": entry["direction"], **t}, currency, account_iban,
                                   batch=True) for t in transactions) if transactions else \
        _transaction(version, entry, currency, account_iban, batch=False)
    return (f"<Ntry><Amt Ccy=\"{currency}\">{value:f}</Amt><CdtDbtInd>{_side(entry['direction'])}</CdtDbtInd>"
            f"{reversal}{status}<BookgDt><Dt>{booked}</Dt></BookgDt>{valued}{reference}{_code(entry)}"
            f"<NtryDtls>{details}</NtryDtls></Ntry>\n")


def _party(version: str, role: str, name: str | None, iban: str | None, bic: str | None) -> tuple[str, str, str]:
    """(party, account, agent) elements for Dbtr or Cdtr."""
    named = f"<Nm>{escape(name)}</Nm>" if name else ""
    party = (f"<{role}>{named}</{role}>" if version == "02" else f"<{role}><Pty>{named}</Pty></{role}>") if name else ""
    account = f"<{role}Acct><Id><IBAN>{iban}</IBAN></Id></{role}Acct>" if iban else ""
    tag = "BIC" if version == "02" else "BICFI"
    agent = f"<{role}Agt><FinInstnId><{tag}>{bic}</{tag}></FinInstnId></{role}Agt>" if bic else ""
    return party, account, agent


def _transaction(version: str, tx: dict, currency: str, account_iban: str, *, batch: bool) -> str:
    refs = ""
    if batch and tx.get("bank_reference"):
        refs += f"<AcctSvcrRef>{escape(tx['bank_reference'])}</AcctSvcrRef>"
    refs += f"<EndToEndId>{escape(tx.get('end_to_end_id') or 'NOTPROVIDED')}</EndToEndId>"
    value = f"{_money(tx['amount']):f}"
    amounts = f"<AmtDtls><TxAmt><Amt Ccy=\"{currency}\">{value}</Amt></TxAmt></AmtDtls>"
    if version == "08":
        amounts = f"<Amt Ccy=\"{currency}\">{value}</Amt><CdtDbtInd>{_side(tx['direction'])}</CdtDbtInd>{amounts}"
    them = _party(version, "X", tx.get("counterparty_name"), tx.get("counterparty_iban"), tx.get("counterparty_bic"))
    us = _party(version, "X", None, account_iban, None)
    # a credit comes from the debtor; a debit goes to the creditor, but a returned direct debit names the
    # debtor (our customer) and us as the creditor, as in the original collection
    debtor, creditor = (them, us) if tx["direction"] == "credit" or tx.get("return_reason") else (us, them)
    parties = (debtor[0].replace("X>", "Dbtr>") + debtor[1].replace("XAcct>", "DbtrAcct>")
               + creditor[0].replace("X>", "Cdtr>") + creditor[1].replace("XAcct>", "CdtrAcct>"))
    agents = debtor[2].replace("XAgt>", "DbtrAgt>") + creditor[2].replace("XAgt>", "CdtrAgt>")
    remittance = ""
    if tx.get("remittance") or tx.get("creditor_reference"):
        lines = tx.get("remittance") or ""
        ustrd = "".join(f"<Ustrd>{escape(line)}</Ustrd>" for line in textwrap.wrap(lines, 140, break_on_hyphens=False))
        strd = (f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
                f"<Ref>{escape(tx['creditor_reference'])}</Ref></CdtrRefInf></Strd>" if tx.get("creditor_reference") else "")
        remittance = f"<RmtInf>{ustrd}{strd}</RmtInf>"
    returned = (f"<RtrInf><Rsn><Cd>{tx['return_reason']}</Cd></Rsn></RtrInf>" if tx.get("return_reason") else "")
    return (f"<TxDtls><Refs>{refs}</Refs>{amounts}"
            f"{f'<RltdPties>{parties}</RltdPties>' if parties else ''}"
            f"{f'<RltdAgts>{agents}</RltdAgts>' if agents else ''}{remittance}{returned}</TxDtls>")
