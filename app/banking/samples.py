"""Bank statement files written from simple dicts, as banks send them: for the tests, the demo and bench/.

An entry is a dict with the `Entry` field names: amount (positive), direction ("credit"/"debit"),
booking_date, and optionally value_date, currency, reversal, bank_reference, end_to_end_id,
creditor_reference, remittance, counterparty_name/_iban/_bic, return_reason, bank_transaction_code; camt.053
also takes status ("BOOK", "PDNG", ...) and transactions (a list of such dicts without dates: a batch
booking, whose entry amount is their sum). Dates are `date`s or ISO strings; amounts Decimals or strings.
Files are built as strings (10,000 entries in a few tens of milliseconds), never as trees.
"""
from __future__ import annotations

import csv
import io
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


# ------------------------------------------------------------------ MT940
_POSTING = {("credit", False): "SEPA-GUTSCHRIFT", ("debit", False): "SEPA-UEBERWEISUNG",
            ("debit", True): "RUECKLASTSCHRIFT", ("credit", True): "STORNO"}


def mt940(entries: list[dict], *, account_iban: str | None = "DE89370400440532013000", account: str | None = None,
          currency: str = "EUR", statement_id: str = "STARTUMSE", statement_number: str = "00001/001",
          opening_balance=Decimal(0), opening_date=None, closing_date=None, line_ending: str = "\r\n",
          encoding: str = "utf-8", more_statements: list[dict] = ()) -> bytes:
    """An MT940 file as a German bank writes it: one :20: block of `entries` on `account_iban` (or on `account`
    as BLZ/account number), :86: with structured subfields (?00 posting text, ?20–?29 remittance pieces of at
    most 27 characters with EREF+/SVWZ+, ?30 BIC, ?31 IBAN, ?32/?33 name, ?34 return reason), `-` after each
    block. `more_statements` (dicts of keyword arguments with entries) add :20: blocks."""
    first = dict(entries=entries, account=account or account_iban, statement_id=statement_id,
                 statement_number=statement_number, opening_balance=opening_balance, opening_date=opening_date,
                 closing_date=closing_date)
    lines: list[str] = []
    for more in [{}, *more_statements]:
        lines += _mt940_block(currency, {**first, **more})
    return (line_ending.join(lines) + line_ending).encode(encoding)


def _yymmdd(day) -> str:
    return date.fromisoformat(_iso(day)).strftime("%y%m%d")


def _mt940_amount(value: Decimal) -> str:
    return f"{abs(value):.2f}".replace(".", ",")


def _mt940_block(currency: str, s: dict) -> list[str]:
    entries = s["entries"]
    days = sorted(_iso(e["booking_date"]) for e in entries) or ["2026-12-01"]
    opening = _money(s["opening_balance"])
    closing = closing_balance(entries, opening)
    lines = [f":20:{s['statement_id']}", f":25:{s['account']}", f":28C:{s['statement_number']}",
             f":60F:{'D' if opening < 0 else 'C'}{_yymmdd(s['opening_date'] or days[0])}{currency}"
             f"{_mt940_amount(opening)}"]
    for entry in entries:
        lines += _mt940_entry(entry)
    lines += [f":62F:{'D' if closing < 0 else 'C'}{_yymmdd(s['closing_date'] or days[-1])}{currency}"
              f"{_mt940_amount(closing)}", "-"]
    return lines


def _mt940_entry(entry: dict) -> list[str]:
    direction, reversal = entry["direction"], bool(entry.get("reversal"))
    mark = {("credit", False): "C", ("debit", False): "D", ("debit", True): "RC", ("credit", True): "RD"}[
        (direction, reversal)]
    booked = date.fromisoformat(_iso(entry["booking_date"]))
    valued = date.fromisoformat(_iso(entry.get("value_date") or entry["booking_date"]))
    kind = "NRTI" if entry.get("return_reason") else "NTRF"
    reference = f"//{entry['bank_reference']}" if entry.get("bank_reference") else ""
    statement_line = (f":61:{valued:%y%m%d}{booked:%m%d}{mark}{_mt940_amount(_money(entry['amount']))}{kind}"
                      f"NONREF{reference}")
    returned = bool(entry.get("return_reason"))
    code = entry.get("bank_transaction_code") or ("109" if returned else "166" if direction == "credit" else "177")
    pieces: list[str] = []
    for keyword, value in (("EREF+", entry.get("end_to_end_id")),
                           ("SVWZ+", " ".join(v for v in (entry.get("creditor_reference"), entry.get("remittance"))
                                              if v))):
        if value:
            pieces += _pieces(keyword + value)
    if len(pieces) > 14:
        raise ValueError("remittance too long for ?20-?29 and ?60-?63")
    keys = [f"{n:02d}" for n in (*range(20, 30), *range(60, 64))]
    details = f"{code}?00{_POSTING[('debit', True) if returned else (direction, reversal)]}?10931"
    details += "".join(f"?{key}{piece}" for key, piece in zip(keys, pieces))
    if entry.get("counterparty_bic"):
        details += f"?30{entry['counterparty_bic']}"
    if entry.get("counterparty_iban"):
        details += f"?31{entry['counterparty_iban']}"
    name = entry.get("counterparty_name") or ""
    if name:
        details += f"?32{name[:27]}" + (f"?33{name[27:54]}" if len(name) > 27 else "")
    if returned:
        details += f"?34{entry['return_reason']}"
    # lines of at most 65 characters, each holding whole subfields (a line's trailing space would be lost);
    # SWIFT allows 6 lines, German banks send more when the details need them
    subfields = ["?" + part for part in details.split("?")]
    wrapped = [":86:" + subfields[0][1:]]
    for subfield in subfields[1:]:
        if len(wrapped[-1]) + len(subfield) > 65:
            wrapped.append(subfield)
        else:
            wrapped[-1] += subfield
    return [statement_line, *wrapped]


def _pieces(text: str, width: int = 27) -> list[str]:
    """`text` cut into ?2x pieces of at most `width` characters, none ending in a space (banks' software
    strips it): the space starts the next piece instead."""
    pieces = []
    while text:
        piece = text[:width]
        if len(text) > width and piece.endswith(" ") and piece.strip():
            piece = piece.rstrip(" ")
        pieces.append(piece)
        text = text[len(piece):]
    return pieces


# ------------------------------------------------------------------ CSV
def csv_statement(entries: list[dict], *, delimiter: str = ",", decimal_comma: bool = False) -> bytes:
    """A CSV statement (columns as app/banking/csvfile.py documents them); amounts signed."""
    from app.banking.csvfile import COLUMNS
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        amount = f"{_signed(entry):f}"
        writer.writerow([_iso(entry["booking_date"]), _iso(entry["value_date"]) if entry.get("value_date") else "",
                         amount.replace(".", ",") if decimal_comma else amount, entry.get("currency", "EUR"),
                         entry.get("counterparty_name") or "", entry.get("counterparty_iban") or "",
                         entry.get("remittance") or "", entry.get("bank_reference") or "",
                         entry.get("end_to_end_id") or ""])
    return out.getvalue().encode()
