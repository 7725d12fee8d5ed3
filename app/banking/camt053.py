"""ISO 20022 camt.053 bank statements, versions .001.02 and .001.08 (BkToCstmrStmt).

Read: Stmt Id, ElctrncSeqNb (else LglSeqNb), CreDtTm, FrToDt, Acct/Id/IBAN (else Othr/Id), Acct/Ccy, the
opening (OPBD, else PRCD) and closing (CLBD) balances signed by CdtDbtInd, and every booked Ntry. Entries whose
status is not BOOK (PDNG, INFO, ...) have not moved money: they are skipped and counted (`Statement.skipped`),
and so are zero-amount entries. An entry with several TxDtls (a batch booking) gives one Entry per
transaction with its own amount (TxDtls/Amt, else AmtDtls/TxAmt/Amt), and those must add up to the entry.

A file may hold several Stmt elements for the same account (e.g. one per day): their entries are read in
order, the opening balance is the first's and the closing balance the last's; statements for different
accounts are refused (import them one file per account).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from lxml import etree

from app.banking.iso20022 import amount, describe, iterparse, message_name, namespace, q, text
from app.banking.statements import Entry, Statement, finish, too_many
from app.billing.money import minor_unit
from app.errors import CurrencyError, StatementError

VERSIONS = ("camt.053.001.02", "camt.053.001.08")
_OPENING, _CLOSING = ("OPBD", "PRCD"), ("CLBD",)


def read(data: bytes, *, max_entries: int) -> Statement:
    """The statement, read as a stream: each entry is read when its element ends and then dropped, so a large
    file never stands in memory as a whole tree (only its statements' headers and balances do)."""
    problems: list[str] = []
    reader: _Reader | None = None
    statements = []
    root = ns = current = None
    try:
        for _, root in iterparse(data, events=("start",)):  # the root alone: what kind of file this is
            break
        if root is not None:
            name = _check_kind(root)
            ns = namespace(root)
            reader = _Reader(ns, None, problems, max_entries)
            ntry_tag, stmt_tag = q(ns, "Ntry"), q(ns, "Stmt")
            for _, element in iterparse(data, events=("end",), tag=(ntry_tag, stmt_tag)):
                parent = element.getparent()
                if not statements and element.tag == stmt_tag:
                    root = element.getroottree().getroot()  # this read's root (the first read was only begun)
                if element.tag == stmt_tag:
                    statements.append(element)
                elif parent is not None and parent.tag == stmt_tag:
                    if parent is not current:  # the statement's account (read before its entries) names our side
                        current, reader.account = parent, _account(parent, ns)
                    reader.entry(element)
                    element.clear(keep_tail=True)
                    previous = element.getprevious()
                    while previous is not None and previous.tag == ntry_tag:  # entries read before: gone
                        parent.remove(previous)
                        previous = element.getprevious()
    except etree.XMLSyntaxError as error:
        raise StatementError([f"the file is not complete XML: it breaks off or is damaged at line "
                              f"{error.lineno or 1} ({error.msg}); ask the bank for the file again"]) from None
    if root is None:
        raise StatementError(["the file is not XML"])
    if not statements:
        raise StatementError([f"line {root.sourceline}: the file holds no statement (BkToCstmrStmt/Stmt)"])
    accounts = {_account(stmt, ns) for stmt in statements}
    if len(accounts) > 1:
        shown = ", ".join(sorted(account or "(none)" for account in accounts))
        raise StatementError([f"the file holds statements for {len(accounts)} accounts ({shown}); import one "
                              f"account's statements at a time"])
    account = accounts.pop()
    if problems:
        raise StatementError(problems)
    first, last = statements[0], statements[-1]
    created = text(first, ns, "CreDtTm") or text(root, ns, "BkToCstmrStmt/GrpHdr/CreDtTm")
    starts = [text(stmt, ns, "FrToDt/FrDtTm") for stmt in statements]
    ends = [text(stmt, ns, "FrToDt/ToDtTm") for stmt in statements]
    return Statement(
        format="camt053", version=name,
        statement_id=(text(first, ns, "Id") if len(statements) == 1
                      else text(root, ns, "BkToCstmrStmt/GrpHdr/MsgId") or text(first, ns, "Id")),
        sequence=text(first, ns, "ElctrncSeqNb") or text(first, ns, "LglSeqNb") or None,
        account_iban=account, account_currency=text(first, ns, "Acct/Ccy") or None,
        created_at=_datetime(created, first, problems),
        from_date=min((_day(s, first, problems) for s in starts if s), default=None),
        to_date=max((_day(s, last, problems) for s in ends if s), default=None),
        opening_balance=_balance(first, ns, _OPENING), closing_balance=_balance(last, ns, _CLOSING),
        entries=finish(account, reader.entries, reader.batch_index), skipped=reader.skipped)


def _check_kind(root) -> str:
    """The message name of a camt.053 document in a version read here; else StatementError saying what it is."""
    name = message_name(root)
    if name is None or not name.startswith("camt.053.") or etree.QName(root).localname != "Document":
        raise StatementError([f"the file is {describe(name)}, not a bank statement: Arbill reads camt.053 XML "
                              f"(versions .001.02 and .001.08), MT940 text or CSV"])
    if name not in VERSIONS:
        raise StatementError([f"the file is a camt.053 statement in version {name}; Arbill reads "
                              f"{' and '.join(VERSIONS)} (most banks offer one of these in online banking)"])
    return name


def _account(stmt, ns: str) -> str | None:
    return (text(stmt, ns, "Acct/Id/IBAN").replace(" ", "").upper() or text(stmt, ns, "Acct/Id/Othr/Id") or None)


def _balance(stmt, ns: str, codes: tuple[str, ...]) -> Decimal | None:
    for code in codes:
        for balance in stmt.iterfind(q(ns, "Bal")):
            if text(balance, ns, "Tp/CdOrPrtry/Cd") == code:
                value, _currency = amount(balance, ns, "Amt")
                if value is not None:
                    return -value if text(balance, ns, "CdtDbtInd") == "DBIT" else value
    return None


def _day(value: str, element, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        problems.append(f"line {element.sourceline}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _datetime(value: str, element, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"line {element.sourceline}: {value!r} is not a date and time")
        return None


class _Reader:
    """Reads the entries of the statements of one file, collecting problems instead of stopping at the first."""

    def __init__(self, ns: str, account: str | None, problems: list[str], max_entries: int):
        self.ns, self.account, self.problems, self.max_entries = ns, account, problems, max_entries
        self.entries: list[Entry] = []
        self.batch_index: list[int | None] = []
        self.skipped = 0

    def entry(self, ntry) -> None:
        ns, problems = self.ns, self.problems
        status = text(ntry, ns, "Sts/Cd") or text(ntry, ns, "Sts")
        where = f"line {ntry.sourceline}: entry"
        if status != "BOOK":
            self.skipped += 1
            return
        value, currency = amount(ntry, ns, "Amt")
        if value is None or not value.is_finite() or value < 0:
            problems.append(f"{where}: amount {text(ntry, ns, 'Amt')!r} is not a positive number")
            return
        if value == 0:
            self.skipped += 1
            return
        before = len(problems)
        currency = self.currency(currency, where)
        side = text(ntry, ns, "CdtDbtInd")
        if side not in ("CRDT", "DBIT"):
            problems.append(f"{where}: CdtDbtInd {side!r} is neither CRDT (credit) nor DBIT (debit)")
        booked = text(ntry, ns, "BookgDt/Dt") or text(ntry, ns, "BookgDt/DtTm")
        if not booked:
            problems.append(f"{where}: no booking date (BookgDt)")
        booking_date = _day(booked, ntry, problems) if booked else None
        valued = text(ntry, ns, "ValDt/Dt") or text(ntry, ns, "ValDt/DtTm")
        value_date = _day(valued, ntry, problems) if valued else None
        if len(problems) > before:
            return
        direction = "credit" if side == "CRDT" else "debit"
        common = dict(booking_date=booking_date, value_date=value_date, currency=currency,
                      reversal=text(ntry, ns, "RvslInd").lower() in ("true", "1"),
                      bank_reference=text(ntry, ns, "AcctSvcrRef") or text(ntry, ns, "NtryRef") or None,
                      bank_transaction_code=_code(ntry, ns))
        transactions = ntry.findall(q(ns, "NtryDtls/TxDtls"))
        if len(transactions) <= 1:
            details = self.details(transactions[0], direction) if transactions else {}
            details.pop("own_reference", None)
            self.add(Entry(fingerprint="", amount=value, direction=direction, **{**common, **details}), None)
            return
        signed_total = Decimal(0)
        batch: list[tuple[Entry, int | None]] = []
        for index, tx in enumerate(transactions, start=1):
            tx_value, tx_currency = amount(tx, ns, "Amt")
            if tx_value is None:
                tx_value, tx_currency = amount(tx, ns, "AmtDtls/TxAmt/Amt")
            tx_where = f"line {tx.sourceline}: transaction {index} of the batch entry"
            if tx_value is None or not tx_value.is_finite() or tx_value <= 0:
                problems.append(f"{tx_where}: no positive amount (TxDtls/Amt or AmtDtls/TxAmt/Amt)")
                continue
            tx_side = text(tx, ns, "CdtDbtInd") or side
            tx_direction = "credit" if tx_side == "CRDT" else "debit"
            signed_total += tx_value if tx_side == side else -tx_value
            details = self.details(tx, tx_direction)
            own_reference = details.pop("own_reference", False)
            batch.append((Entry(fingerprint="", amount=tx_value, direction=tx_direction,
                                **{**common, "currency": self.currency(tx_currency or currency, tx_where),
                                   **details}), None if own_reference else index))
        if len(problems) > before:
            return
        if signed_total != value:
            problems.append(f"{where}: its {len(transactions)} transactions add up to {signed_total} but the entry "
                            f"is {value}; the bank's file is inconsistent")
            return
        for entry, index in batch:
            self.add(entry, index)

    def currency(self, code: str | None, where: str) -> str:
        code = (code or "").strip().upper()
        try:
            minor_unit(code)
        except CurrencyError:
            self.problems.append(f"{where}: currency {code or '(none)'!r} is not an ISO 4217 currency")
        return code

    def add(self, entry: Entry, batch_index: int | None) -> None:
        if len(self.entries) >= self.max_entries:
            raise too_many(self.max_entries)
        self.entries.append(entry)
        self.batch_index.append(batch_index)

    def details(self, tx, direction: str) -> dict:
        """What one TxDtls says: references, counterparty (the debtor of a credit, the creditor of a debit,
        unless that party is this account itself, as in a returned direct debit), remittance, return."""
        ns = self.ns
        found: dict = {}
        end_to_end = text(tx, ns, "Refs/EndToEndId")
        if end_to_end and end_to_end.upper() != "NOTPROVIDED":
            found["end_to_end_id"] = end_to_end
        if text(tx, ns, "Refs/AcctSvcrRef"):
            found["bank_reference"] = text(tx, ns, "Refs/AcctSvcrRef")
            found["own_reference"] = True
        for reference in tx.iterfind(q(ns, "RmtInf/Strd/CdtrRefInf/Ref")):
            if (reference.text or "").strip():
                found["creditor_reference"] = reference.text.strip()
                break
        found["remittance"] = " ".join((line.text or "").strip() for line in tx.iterfind(q(ns, "RmtInf/Ustrd"))
                                       if (line.text or "").strip())
        sides = ("Dbtr", "Cdtr") if direction == "credit" else ("Cdtr", "Dbtr")
        for party in sides:
            iban = text(tx, ns, f"RltdPties/{party}Acct/Id/IBAN").replace(" ", "").upper() or None
            name = text(tx, ns, f"RltdPties/{party}/Nm") or text(tx, ns, f"RltdPties/{party}/Pty/Nm") or None
            if (iban and iban == self.account) or not (iban or name):
                continue
            bic = (text(tx, ns, f"RltdAgts/{party}Agt/FinInstnId/BIC")
                   or text(tx, ns, f"RltdAgts/{party}Agt/FinInstnId/BICFI") or None)
            found.update(counterparty_name=name, counterparty_iban=iban, counterparty_bic=bic)
            break
        reason = text(tx, ns, "RtrInf/Rsn/Cd") or text(tx, ns, "RtrInf/Rsn/Prtry")
        if reason:
            found["return_reason"] = reason
        code = _code(tx, ns)
        if code:
            found["bank_transaction_code"] = code
        return found


def _code(element, ns: str) -> str | None:
    """`PMNT/RCDT/ESCT` from BkTxCd/Domn, else the proprietary code (e.g. `NTRF+166+00931`)."""
    domain = text(element, ns, "BkTxCd/Domn/Cd")
    if domain:
        return "/".join((domain, text(element, ns, "BkTxCd/Domn/Fmly/Cd"), text(element, ns, "BkTxCd/Domn/Fmly/SubFmlyCd")))
    return text(element, ns, "BkTxCd/Prtry/Cd") or None
