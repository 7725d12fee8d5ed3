"""The contracts CSV importer, through `flask contracts import`: all or nothing, every bad row named."""
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contract, ContractLine, Customer
from app.records.entities import EntityInput, create_legal_entity
from tests.factories import add_tax_code

HEADER = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
          "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")
GOOD_ROWS = [
    "DE01,C-1,Acme GmbH,ap@acme.example,Hosting,1,49.00,EUR,19.45,monthly,2026-01-31,,,,,",
    "DE01,C-1,Acme GmbH,ap@acme.example,Support hours,2.5,80.00,EUR,7,monthly,2026-01-31,,,,,",
    "DE01,C-2,Beta AG,ap@beta.example,Licence,3,10.00,EUR,19,annual,2028-02-29,2030-12-31,sepa_debit,"
    "DE89 3704 0044 0532 0130 00,MANDATE-7,2026-01-15",
    "DE01,C-3,Acme GmbH,ap@acme.example,Backup,1,5.00,EUR,19,quarterly,2026-03-01,,manual,,,",
    "FR01,C-1,Acme SARL,,Hébergement,1,20,EUR,20,weekly,2026-01-05,,,,,",
]


@pytest.fixture
def entities(app):
    with app.app_context():
        de01 = create_legal_entity(EntityInput(code="DE01", name="Demo GmbH", country="DE", currency="EUR"))
        add_tax_code(de01, "DE_VAT_19_45", "19.45")  # the walkthrough's rate, which GOOD_ROWS give bare
        create_legal_entity(EntityInput(code="FR01", name="Démo SAS", country="FR", currency="EUR"))
        db.session.commit()


def write_csv(tmp_path, rows, header=HEADER):
    path = tmp_path / "contracts.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Contract, ContractLine, Customer))


def test_good_file_imports_contracts_lines_and_customers(app, runner, entities, tmp_path):
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, GOOD_ROWS)])
    assert result.exit_code == 0, result.output
    assert "Imported 4 contract(s) with 5 line(s); created 3 customer(s)." in result.output
    assert counts(app) == (4, 5, 3)
    with app.app_context():
        c1 = db.session.scalar(select(Contract).where(Contract.reference == "C-1", Contract.legal_entity.has(code="DE01")))
        assert [(l.position, l.quantity, l.unit_price, l.vat_rate) for l in c1.lines] == [
            (1, Decimal("1"), Decimal("49.00"), Decimal("19.45")),
            (2, Decimal("2.5"), Decimal("80.00"), Decimal("7")),
        ]
        assert isinstance(c1.lines[0].unit_price, Decimal)
        assert c1.status == "active" and c1.frequency == "monthly" and c1.customer.name == "Acme GmbH"
        beta = db.session.scalar(select(Customer).where(Customer.name == "Beta AG"))
        assert beta.payment_method == "sepa_debit"
        assert beta.iban == "DE89370400440532013000"  # normalised
        assert beta.mandate_reference == "MANDATE-7"
        # The same customer name on two contracts is one customer.
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "Acme GmbH")) == 1


def test_existing_customer_is_found_by_name_within_the_entity(app, runner, entities, tmp_path):
    assert runner.invoke(args=["contracts", "import", write_csv(tmp_path, GOOD_ROWS[:2])]).exit_code == 0
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, [GOOD_ROWS[3]])])
    assert result.exit_code == 0, result.output
    assert "created 0 customer(s)" in result.output


BAD_CASES = [
    ("XX99,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,", "line 2: entity: unknown legal entity 'XX99'"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUX,19,monthly,2026-01-01,,,,,", "line 2: currency: currency EUX is not an ISO 4217 currency"),
    ("DE01,C-9,Acme,,Hosting,one,1,EUR,19,monthly,2026-01-01,,,,,", "line 2: quantity: 'one' is not a number"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-02-30,,,,,", "line 2: start_date: '2026-02-30' is not a date"),
    ("DE01,C-9,Acme,,Hosting,-1,1,EUR,19,monthly,2026-01-01,,,,,", "line 2: quantity: -1 is negative"),
    ("DE01,C-9,Acme,,Hosting,1,-0.01,EUR,19,monthly,2026-01-01,,,,,", "line 2: unit_price: -0.01 is negative"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,100.5,monthly,2026-01-01,,,,,", "line 2: tax_rate: 100.5 is outside 0-100"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,-1,monthly,2026-01-01,,,,,", "line 2: tax_rate: -1 is outside 0-100"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,fortnightly,2026-01-01,,,,,", "line 2: frequency: unknown frequency 'fortnightly'"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,2025-12-31,,,,", "line 2: end_date: 2025-12-31 is before start_date 2026-01-01"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,sepa_debit,DE89370400440532013001,M-1,2026-01-01",
     "line 2: iban: IBAN DE89370400440532013001 has an invalid checksum"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,sepa_debit,DE89370400440532013000,,",
     "line 2: mandate_reference: mandate reference (needed for sepa_debit) is required"),
    ("DE01,C-9,Acme,not-an-email,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,", "line 2: customer_email: 'not-an-email' is not an e-mail address"),
    ("DE01,,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,", "line 2: contract_ref: contract reference is required"),
    # Cells longer than their column (StringDataRightTruncation on PostgreSQL before), measured by the model.
    (f"DE01,C-9,{'A' * 300},,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: customer: customer name is 300 characters long; at most 200 fit"),
    (f"DE01,{'R' * 100},Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: contract_ref: contract reference is 100 characters long; at most 64 fit"),
    (f"DE01,{'R' * 81},Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: contract_ref: contract reference is 81 characters long; at most 64 fit"),
    # Numbers larger than their Numeric column (numeric field overflow on PostgreSQL before), measured by the model.
    ("DE01,C-9,Acme,,Hosting,100000000000000,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: quantity: 100000000000000 is above 99999999999999.9999"),
    ("DE01,C-9,Acme,,Hosting,1,1000000000000,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: unit_price: 1000000000000 is above 999999999999.999999"),
    (f"DE01,C-9,Acme,{'a' * 250}@example.com,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: customer_email: e-mail address is 262 characters long; at most 254 fit"),
    (f"DE01,C-9,Acme,,{'D' * 501},1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: description: description is 501 characters long; at most 500 fit"),
    (f"DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,sepa_debit,DE89370400440532013000,{'M' * 36},2026-01-01",
     "line 2: mandate_reference: mandate reference is 36 characters long; at most 35 fit"),
    # Control characters in one-line values (a CR/LF in a name broke the e-mail headers of its invoices).
    ('DE01,C-9,"Acme\r\nBcc: x@example.com",,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,',
     "line 2: customer: customer name contains a line break (CR) at character 5; it must be one line of plain text"),
    ('DE01,"C-\n9",Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,',
     "line 2: contract_ref: contract reference contains a line break (LF) at character 3"),
    ("DE01,C-9,Acme,,Host\x00ing,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: description: description contains a NUL character at character 5"),
    ("DE01,C-9,Ac\tme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: customer: customer name contains a tab at character 3"),
    ("DE01,C-9,Ac\u2028me,,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: customer: customer name contains a line separator (U+2028) at character 3"),
    ("DE01,C-9,Acme,ap\x00@acme.example,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,",
     "line 2: customer_email: e-mail address contains a NUL character at character 3"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,sepa_debit,DE89370400440532013000,\"M-\n1\",2026-01-01",
     "line 2: mandate_reference: mandate reference contains a line break (LF)"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,9999-12-31,,,,,",
     "line 2: start_date: 9999-12-31 is outside the dates Arbill takes (1900-01-01 to 2999-12-31)"),
    ("DE01,C-9,Acme,,Hosting,1,1,EUR,19,monthly,2026-01-01,,sepa_debit,DE89370400440532013000,M-1,2031-01-01",
     "line 2: mandate_date: 2031-01-01 is after today"),
]


@pytest.mark.parametrize("row, message", BAD_CASES, ids=[m.split(": ")[1] + ":" + m.split(": ")[2][:20] for _, m in BAD_CASES])
def test_each_kind_of_bad_row_is_named_and_nothing_is_written(app, runner, entities, tmp_path, row, message):
    # The bad row comes after good ones: they must not be written either.
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, [row, *GOOD_ROWS])])
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "nothing was imported" in result.output
    assert counts(app) == (0, 0, 0)


def test_a_line_whose_currency_differs_from_its_contract(app, runner, entities, tmp_path):
    rows = [GOOD_ROWS[0], "DE01,C-1,Acme GmbH,ap@acme.example,Support,1,5,USD,19,monthly,2026-01-31,,,,,"]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 1
    assert "line 3: currency: 'USD' differs from contract C-1's 'EUR' (line 2)" in result.output
    assert counts(app) == (0, 0, 0)


def test_a_contract_reference_that_already_exists(app, runner, entities, tmp_path):
    assert runner.invoke(args=["contracts", "import", write_csv(tmp_path, GOOD_ROWS)]).exit_code == 0
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, [GOOD_ROWS[3].replace("C-3", "C-1")])])
    assert result.exit_code == 1
    assert "line 2: contract_ref: contract C-1 already exists in DE01" in result.output
    assert counts(app) == (4, 5, 3)


def test_every_bad_row_is_reported_at_once(app, runner, entities, tmp_path):
    rows = [GOOD_ROWS[0], BAD_CASES[0][0], GOOD_ROWS[1], BAD_CASES[4][0], BAD_CASES[8][0]]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 1
    reported = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in reported] == ["line 3", "line 5", "line 6"]
    assert "Error:" in result.output and "3 problem(s); nothing was imported" in result.output
    assert counts(app) == (0, 0, 0)


def test_missing_columns_are_named(app, runner, entities, tmp_path):
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, ["DE01,C-1"], header="entity,contract_ref")])
    assert result.exit_code == 1
    assert "line 1: header: missing column(s) customer, customer_email" in result.output


def test_missing_file_is_one_line_error(runner, app, tmp_path):
    result = runner.invoke(args=["contracts", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nope.csv'}: no such file"


def _row(n: int, contract: str | None = None, quantity: str = "1") -> str:
    customer = "Customer S" if contract else f"Customer {n % 7}"
    return (f"DE01,{contract or f'B-{n:05d}'},{customer},,Line {n},{quantity},10.00,EUR,19,monthly,"
            "2026-01-01,,,,,")


def test_batches_write_as_they_go_and_a_late_bad_row_still_writes_nothing(app, runner, entities, tmp_path,
                                                                          monkeypatch):
    """Rows are written in batches inside a savepoint: a bad row after several batches undoes them all."""
    from app.records import importer

    monkeypatch.setattr(importer, "BATCH_ROWS", 4)
    rows = [_row(n) for n in range(20)] + [_row(20, quantity="lots")]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 1, result.output
    assert "line 22: quantity: 'lots' is not a number" in result.output
    assert counts(app) == (0, 0, 0)


def test_a_contract_whose_lines_are_far_apart_keeps_them_in_file_order(app, runner, entities, tmp_path, monkeypatch):
    from app.records import importer

    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    rows = [_row(0, "C-SPLIT"), *[_row(n) for n in range(1, 9)], _row(9, "C-SPLIT"), _row(10, "C-SPLIT")]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 0, result.output
    assert "Imported 9 contract(s) with 11 line(s); created 8 customer(s)." in result.output
    with app.app_context():
        split = db.session.scalar(select(Contract).where(Contract.reference == "C-SPLIT"))
        assert [(line.position, line.description) for line in split.lines] == [
            (1, "Line 0"), (2, "Line 9"), (3, "Line 10")]
        assert split.customer.name == "Customer S"


def test_problems_are_listed_up_to_a_cap_and_counted(app, runner, entities, tmp_path):
    rows = [_row(n, quantity="x") for n in range(150)]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 1
    listed = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert len(listed) == 100 and listed[0].startswith("line 2: quantity") and listed[-1].startswith("line 101:")
    assert "… and 50 more problem(s) after these" in result.output
    assert "150 problem(s); nothing was imported" in result.output
    assert counts(app) == (0, 0, 0)


def test_a_file_that_is_neither_utf8_nor_windows_1252_names_the_line(app, runner, entities, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("\n".join([HEADER, GOOD_ROWS[0], GOOD_ROWS[0].replace("Acme GmbH", "M\x81ller GmbH")]).encode("latin-1"))
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 1
    assert ("line 3: the file is neither UTF-8 nor Windows-1252 (cp1252) text (byte 0x81 at byte 11 of the line)"
            in result.output)
    assert counts(app) == (0, 0, 0)


def test_a_utf8_file_with_a_windows_1252_line_says_it_mixes_encodings(app, runner, entities, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("\n".join([HEADER, GOOD_ROWS[0].replace("Hosting", "Hosting für Müller")]).encode()
                     + b"\n" + GOOD_ROWS[1].replace("Support", "Unterst\xfctzung").encode("latin-1"))
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3: the file is not UTF-8 text (invalid start byte at byte" in result.output
    assert "though line 2 is UTF-8: it mixes two encodings" in result.output
    assert counts(app) == (0, 0, 0)


def test_a_row_spanning_lines_is_named_by_its_first_line(app, runner, entities, tmp_path):
    rows = [GOOD_ROWS[0], 'DE01,C-9,"Two\nlines",,Hosting,1,1,EUR,19,monthly,2026-01-01,,,,,', GOOD_ROWS[1]]
    result = runner.invoke(args=["contracts", "import", write_csv(tmp_path, rows)])
    assert result.exit_code == 1
    assert "line 3: customer: customer name contains a line break (LF) at character 4" in result.output


def test_a_byte_order_mark_and_cr_line_ends_are_read(app, runner, entities, tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r".join([HEADER, *GOOD_ROWS]).encode() + b"\r")
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert counts(app) == (4, 5, 3)


MEMORY_CHILD = r"""
import sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from app import create_app
from app.extensions import db
from app.records.importer import import_contracts
from app.transactions import discarded
from config import TestingConfig

config = TestingConfig()
config.SQLALCHEMY_DATABASE_URI = sys.argv[2]
app = create_app(config)
with app.app_context():
    db.session.execute(db.text("SELECT 1"))  # connect before measuring
    tracemalloc.start()
    with discarded():  # the import joins it, and nothing is kept
        with open(sys.argv[3], newline="", encoding="utf-8") as stream:
            result = import_contracts(stream)
        peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(result.lines, peak)
"""


def test_memory_stays_flat_however_long_the_file(app, entities, tmp_path):
    """The importer keeps what later rows are checked against, not the rows: Python's peak allocation
    while importing 12,000 rows (6,000 contracts) stays under 16 MiB, about 1.4 KB a row. The importer
    that read the file whole and built every row's dicts and ORM objects peaked at ~9.4 KB a row
    (bench/contracts_import.py: 180 MiB for 20,000 rows); for this file, ~110 MiB."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    rows = 12_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            contract = n // 2
            out.write(f"DE01,M-{contract:06d},Customer {contract // 10:05d},c{contract // 10}@example.com,"
                      f"Hosting plan {n % 2},1,49.00,EUR,19,monthly,2026-01-01,,,,,\n")
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT), url, str(path)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines, peak = map(int, done.stdout.split())
    assert lines == rows
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB while importing {rows} rows"
    assert counts(app) == (0, 0, 0)  # the child rolled back
