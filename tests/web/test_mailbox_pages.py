"""Mailbox (development): what the mail sink received, for admins only; no path leaves its folder."""
import time

import pytest

from app.delivery.mail import build_message, send, send_notification

XSS = "<script>alert(1)</script>"
PDF = b"%PDF-1.7\n% not really a PDF, but bytes that must come back unchanged\n"


def send_invoice_mail(app, subject="Invoice DE01-2026-000001 from DE01 GmbH", to="ap@bolt.example"):
    with app.app_context():
        send(build_message(to, subject, "Dear Bolt,\n\nplease find attached invoice DE01-2026-000001.",
                           attachments=[("DE01-2026-000001.pdf", "application/pdf", PDF),
                                        ("factur-x.xml", "application/xml", b"<Invoice/>")]))


def only_message(mail_sink):
    path, = sorted(mail_sink.directory.glob("*.eml"))
    return path.name


@pytest.mark.parametrize("role", ("viewer", "accountant"))
def test_only_admins_see_the_mailbox(app, client_as, mail_sink, role):
    send_invoice_mail(app)
    name = only_message(mail_sink)
    client = client_as(role)
    assert [client.get(url).status_code for url in ("/mailbox", f"/mailbox/{name}", f"/mailbox/{name}/attachment/0")] \
        == [403, 403, 403]


def test_an_empty_or_missing_folder_says_how_mail_arrives(app, admin_client, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAILBOX_DIR", str(tmp_path / "not-there"))
    html = admin_client.get("/mailbox").get_data(as_text=True)
    assert "No mail yet — <code>make run</code> starts a local mail sink on 127.0.0.1:8025; delivered invoices appear here." in html
    (tmp_path / "empty").mkdir()
    monkeypatch.setitem(app.config, "MAILBOX_DIR", str(tmp_path / "empty"))
    assert "No mail yet" in admin_client.get("/mailbox").get_data(as_text=True)
    assert admin_client.get("/mailbox/1.eml").status_code == 404


def test_a_sent_notification_is_listed_and_shown(app, admin_client, mail_sink):
    with app.app_context():
        send_notification("finance@example.com", "Collection failed: invoice DE01-2026-000007 needs a person",
                          "Collecting invoice DE01-2026-000007 failed 4 times.\nPlease contact the customer.")
    name = only_message(mail_sink)
    listing = admin_client.get("/mailbox").get_data(as_text=True)
    assert "finance@example.com" in listing and "Collection failed: invoice DE01-2026-000007 needs a person" in listing
    assert f'href="/mailbox/{name}"' in listing
    page = admin_client.get(f"/mailbox/{name}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "billing@arbill.localhost" in html and "finance@example.com" in html
    assert "Collecting invoice DE01-2026-000007 failed 4 times.\nPlease contact the customer." in html


def test_an_invoice_mail_lists_its_attachments_and_downloads_them(app, admin_client, mail_sink):
    send_invoice_mail(app)
    name = only_message(mail_sink)
    listing = admin_client.get("/mailbox").get_data(as_text=True)
    assert f"DE01-2026-000001.pdf <small class=\"muted\">({len(PDF)} B)</small>" in listing
    assert "factur-x.xml" in listing and "ap@bolt.example" in listing
    page = admin_client.get(f"/mailbox/{name}").get_data(as_text=True)
    assert f'href="/mailbox/{name}/attachment/0"' in page and f'href="/mailbox/{name}/attachment/1"' in page
    pdf = admin_client.get(f"/mailbox/{name}/attachment/0")
    assert pdf.status_code == 200 and pdf.data == PDF and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == "attachment; filename=DE01-2026-000001.pdf"
    xml = admin_client.get(f"/mailbox/{name}/attachment/1")
    assert xml.mimetype == "application/xml" and xml.data == b"<Invoice/>"
    assert admin_client.get(f"/mailbox/{name}/attachment/2").status_code == 404


def test_newest_mail_comes_first(app, admin_client, mail_sink):
    send_invoice_mail(app, subject="first message")
    time.sleep(0.05)
    send_invoice_mail(app, subject="second message")
    html = admin_client.get("/mailbox").get_data(as_text=True)
    assert html.index("second message") < html.index("first message")


def test_names_outside_the_folder_or_not_messages_are_not_served(app, admin_client, mail_sink):
    send_invoice_mail(app)
    name = only_message(mail_sink)
    (mail_sink.directory.parent / "secret.eml").write_bytes((mail_sink.directory / name).read_bytes())
    (mail_sink.directory / ".hidden.eml").write_bytes(b"Subject: hidden\n\nx")
    (mail_sink.directory / "notes.txt").write_bytes(b"Subject: notes\n\nx")
    for url in ("/mailbox/../secret.eml", "/mailbox/..%2Fsecret.eml", "/mailbox/%2E%2E%2Fsecret.eml",
                "/mailbox/.hidden.eml", "/mailbox/notes.txt", "/mailbox/..", "/mailbox/missing.eml",
                "/mailbox/..%2Fsecret.eml/attachment/0", "/mailbox/%2Fetc%2Fpasswd"):
        assert admin_client.get(url).status_code == 404, url
    listing = admin_client.get("/mailbox").get_data(as_text=True)
    assert ".hidden.eml" not in listing and "notes.txt" not in listing and listing.count('href="/mailbox/') == 1


def test_a_subject_and_body_with_a_script_are_escaped(app, admin_client, mail_sink):
    with app.app_context():
        send_notification(f"x{XSS}@example.com", f"Hello {XSS}", f"Body {XSS}")
    name = only_message(mail_sink)
    for html in (admin_client.get("/mailbox").get_data(as_text=True),
                 admin_client.get(f"/mailbox/{name}").get_data(as_text=True)):
        assert XSS not in html and "Hello &lt;script&gt;alert(1)&lt;/script&gt;" in html
