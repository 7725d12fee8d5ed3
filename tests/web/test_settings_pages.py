"""Settings: legal entities and users, for admins only."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, LegalEntity, User
from tests.conftest import log_in

PAGES = ["/settings/entities", "/settings/entities/new", "/settings/users", "/settings/users/new"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("role, status", [("viewer", 403), ("accountant", 403), ("admin", 200)])
def test_settings_are_for_admins(client_as, path, role, status):
    assert client_as(role).get(path).status_code == status


def test_accountant_cannot_post_settings(client_as):
    response = client_as("accountant").post("/settings/entities/new", data={"code": "X1"})
    assert response.status_code == 403


ENTITY = {"code": "at01", "name": "Arbill Österreich GmbH", "country": "AT", "currency": "EUR",
          "timezone": "Europe/Vienna", "vat_id": "ATU13585627", "payment_terms_days": "30"}


def test_admin_creates_and_edits_a_legal_entity(app, admin_client):
    response = admin_client.post("/settings/entities/new", data=ENTITY)
    assert response.status_code == 302
    page = admin_client.get("/settings/entities").get_data(as_text=True)
    assert "AT01" in page and "Arbill Österreich GmbH" in page and "AT01-YYYY-000001" in page
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert (entity.locale, entity.payment_terms_days) == ("de_AT", 30)
        entity_id = entity.id
    response = admin_client.post(f"/settings/entities/{entity_id}/edit", data={**ENTITY, "name": "Arbill AT",
                                                                              "payment_terms_days": ""})
    assert response.status_code == 302
    with app.app_context():
        entity = db.session.get(LegalEntity, entity_id)
        assert entity.name == "Arbill AT" and entity.payment_terms_days is None and entity.code == "AT01"
        audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "legal_entity.updated"))
        assert audit.actor_label == "admin@example.com"
        assert audit.details["changes"]["name"] == {"old": "Arbill Österreich GmbH", "new": "Arbill AT"}


@pytest.mark.parametrize("field, value, message", [
    ("name", "Arbill\nGmbH", "name contains a line break (LF) at character 7; it must be one line of plain text"),
    ("name", "A" * 201, "name is 201 characters long; at most 200 fit"),
    ("address_line1", "Ring 1\x00", "NUL character"),
    ("postcode", "10\x0b10", "postcode contains the control character U+000B at character 3"),
    ("vat_id", "ATU" + "1" * 40, "is too long for a VAT ID"),
    ("vat_id", "ATU13585628", "is not a valid Austria VAT ID: its check digit does not match"),
    ("country", "XX", "&#39;XX&#39; is not an ISO 3166 country code"),
    ("city", "Wien", "address line 1 is required for a postal address (given: city)"),
    ("contact_phone", "ask for Anna", "may hold only digits"),
    ("contact_email", "anna@", "is not an e-mail address"),
])
def test_entity_fields_refuse_control_characters_and_overlong_values(app, admin_client, field, value, message):
    response = admin_client.post("/settings/entities/new", data={**ENTITY, field: value})
    assert response.status_code in (400, 422)
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(LegalEntity)) is None


def test_invalid_entity_shows_every_error_inline_and_saves_nothing(app, admin_client):
    response = admin_client.post("/settings/entities/new", data={**ENTITY, "currency": "EUX", "timezone": "Mars/Base",
                                                                 "payment_terms_days": "soon"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "currency EUX is not an ISO 4217 currency" in page
    assert "unknown time zone &#39;Mars/Base&#39;" in page and "is not a whole number of days" in page
    with app.app_context():
        assert db.session.scalar(select(LegalEntity)) is None


def test_admin_creates_a_user_who_can_then_log_in(app, admin_client):
    response = admin_client.post("/settings/users/new", data={"email": "New@Example.com", "role": "viewer",
                                                              "password": "long enough pass"})
    assert response.status_code == 302
    assert log_in(app.test_client(), "new@example.com", "long enough pass").status_code == 302


def test_admin_disables_a_user_and_cannot_demote_themselves(app, admin_client, users):
    response = admin_client.post(f"/settings/users/{users['viewer']}/edit", data={"role": "viewer"})  # unchecked: inactive
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, users["viewer"]).active is False
    assert log_in(app.test_client(), "viewer@example.com").status_code == 401
    own = admin_client.post(f"/settings/users/{users['admin']}/edit", data={"role": "viewer", "active": "1"})
    assert own.status_code == 422 and b"cannot change your own role" in own.data
    with app.app_context():
        assert db.session.get(User, users["admin"]).role == "admin"


def test_short_password_is_refused(admin_client):
    response = admin_client.post("/settings/users/new", data={"email": "x@example.com", "role": "viewer", "password": "short"})
    assert response.status_code == 422 and b"at least 12 characters" in response.data


def test_entity_switcher_is_remembered_per_user(app, admin_client, client_as):
    for data in (ENTITY, {**ENTITY, "code": "DE02", "name": "<script>alert(1)</script>", "country": "DE"}):
        assert admin_client.post("/settings/entities/new", data=data).status_code == 302
    with app.app_context():
        de02 = db.session.scalar(select(LegalEntity).where(LegalEntity.code == "DE02")).id
    page = admin_client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    response = admin_client.post("/entity", data={"entity": de02, "next": "/settings/users"})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/users"
    assert f'<option value="{de02}" selected' in admin_client.get("/").get_data(as_text=True)
    # Another user still sees the first entity; an off-site `next` is ignored.
    assert f'<option value="{de02}" selected' not in client_as("viewer").get("/").get_data(as_text=True)
    assert admin_client.post("/entity", data={"entity": de02, "next": "https://evil.example/"}).headers["Location"] == "/"


def test_bank_and_sepa_creditor_details_are_validated_and_saved(app, admin_client):
    bad = admin_client.post("/settings/entities/new", data={**ENTITY, "iban": "DE02120300000000202052", "bic": "NOPE",
                                                            "sepa_creditor_id": "??"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "invalid checksum" in page and "is not a BIC" in page
    assert "is not a SEPA creditor identifier" in page
    good = admin_client.post("/settings/entities/new", data={**ENTITY, "iban": "DE02 1203 0000 0000 2020 51",
                                                             "bic": "byladem1001", "sepa_creditor_id": "DE98ZZZ09999999999"})
    assert good.status_code == 302
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert (entity.iban, entity.bic, entity.sepa_creditor_id) == ("DE02120300000000202051", "BYLADEM1001",
                                                                      "DE98ZZZ09999999999")


def test_collection_lead_days_are_one_to_thirty_or_empty(app, admin_client):
    for value, message in (("0", "0 is outside 1-30 days"), ("31", "31 is outside 1-30 days"),
                           ("two", "is not a whole number of days")):
        bad = admin_client.post("/settings/entities/new", data={**ENTITY, "collection_lead_days": value})
        assert bad.status_code == 422 and message in bad.get_data(as_text=True)
    assert admin_client.post("/settings/entities/new", data={**ENTITY, "collection_lead_days": "5"}).status_code == 302
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert entity.collection_lead_days == 5
    form = admin_client.get(f"/settings/entities/{entity.id}/edit").get_data(as_text=True)
    assert 'name="collection_lead_days" value="5"' in form
    cleared = admin_client.post(f"/settings/entities/{entity.id}/edit", data={**ENTITY, "collection_lead_days": ""})
    assert cleared.status_code == 302
    with app.app_context():
        assert db.session.get(LegalEntity, entity.id).collection_lead_days is None  # the agent's setting applies


def test_an_organisation_admin_gives_and_takes_roles_per_legal_entity_on_the_users_page(app, admin_client):
    from tests.factories import make_entity

    with app.app_context():
        de01, de02 = make_entity("DE01").id, make_entity("DE02", iban="DE89370400440532013000").id
        db.session.commit()
    created = admin_client.post("/settings/users/new", data={"email": "clerk@example.com", "role": "accountant",
                                                             "entity": "DE01", "password": "long enough pass"})
    assert created.status_code == 302
    with app.app_context():
        clerk = db.session.scalar(select(User).where(User.email == "clerk@example.com"))
        assert (clerk.role, clerk.role_in(de01), clerk.role_in(de02)) == (None, "accountant", None)
        clerk_id = clerk.id
    page = admin_client.get(f"/settings/users/{clerk_id}/edit").get_data(as_text=True)
    assert f'name="role_{de01}"' in page and f'name="role_{de02}"' in page
    assert '<option value="accountant" selected>' in page

    clerk_client = app.test_client()
    assert log_in(clerk_client, "clerk@example.com", "long enough pass").status_code == 302
    saved = admin_client.post(f"/settings/users/{clerk_id}/roles", data={f"role_{de01}": "", f"role_{de02}": "viewer"},
                              follow_redirects=True)
    assert "DE01: accountant → none; DE02: none → viewer." in saved.get_data(as_text=True)
    with app.app_context():
        clerk = db.session.get(User, clerk_id)
        assert (clerk.role_in(de01), clerk.role_in(de02)) == (None, "viewer")
        audited = [(e.action, e.details["entity"]) for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("user.role_granted", "user.role_revoked")))
            .order_by(AuditEntry.id))]
        assert audited == [("user.role_granted", "DE01"), ("user.role_revoked", "DE01"), ("user.role_granted", "DE02")]
    # The role taken away ends the clerk's open session.
    assert clerk_client.get("/").status_code == 302

    bad = admin_client.post(f"/settings/users/{clerk_id}/roles", data={f"role_{de02}": "owner"})
    assert bad.status_code == 422 and "role &#39;owner&#39; is not one of" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, clerk_id).role_in(de02) == "viewer"  # nothing changed
    unknown = admin_client.post("/settings/users/new", data={"email": "x2@example.com", "role": "viewer",
                                                             "entity": "ZZ99", "password": "long enough pass"})
    assert unknown.status_code == 422 and "there is no legal entity" in unknown.get_data(as_text=True)


def test_only_an_organisation_admin_changes_roles(app, client_in, users):
    from tests.factories import make_entity

    with app.app_context():
        de01 = make_entity("DE01").id
        db.session.commit()
    entity_admin = client_in("DE01", "admin")
    response = entity_admin.post(f"/settings/users/{users['viewer']}/roles", data={f"role_{de01}": "admin"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(User, users["viewer"]).role_in(de01) == "viewer"  # the org-wide viewer role, unchanged


def test_the_legal_entity_form_keeps_its_grid_when_it_shows_errors(admin_client):
    from lxml import html

    response = admin_client.post("/settings/entities/new", data={**ENTITY, "country": "XX", "vat_id": "XX123",
                                                                 "currency": "EURO"})
    assert response.status_code == 422
    tree = html.fromstring(response.get_data(as_text=True))
    errors = tree.xpath("//small[@class='error']")
    assert {e.get("id") for e in errors} >= {"error-country", "error-vat_id", "error-currency"}
    for grid in tree.xpath("//form//div[@class='grid']"):  # every cell of a row is one field with its error
        assert {child.tag for child in grid} == {"label"}, html.tostring(grid)[:200]
    country = tree.xpath("//input[@name='country']")[0]
    assert country.get("aria-describedby") == "error-country" and country.get("aria-invalid") == "true"
