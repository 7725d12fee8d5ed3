"""The contracts CSV importer, through `flask contracts import`: all or nothing, every bad row named."""
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contract, ContractLine, Customer
from app.records.entities import EntityInput, create_legal_entity

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
        create_legal_entity(EntityInput(code="DE01", name="Demo GmbH", country="DE", currency="EUR"))
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
