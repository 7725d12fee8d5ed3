"""The templates' pure parts: webhook signatures as docs/webhooks.md describes them, and the settings' rules."""
import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from app.agents.webhooks import check_secret, check_url, payload_body, signature, verify
from app.records.validation import FieldError

SECRET = "0123456789abcdef0123"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"evt_1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, body) == f"v1={expected}"
    assert verify(SECRET, "1700000000", body, f"v1={expected}", now=1700000100)


@pytest.mark.parametrize("timestamp, body, header, now", [
    ("1700000000", b'{"id":"evt_1"}', "v1=" + "0" * 64, 1700000000),  # a wrong signature
    ("1700000000", b'{"id":"evt_2"}', None, 1700000000),  # no header
    ("1700000000", b'{"id":"evt_1"}', "ok", 1700000301),  # too old (replayed), checked below with the right one
    ("soon", b'{"id":"evt_1"}', "v1=x", 1700000000),  # not a timestamp
])
def test_verification_refuses_wrong_missing_old_or_malformed(timestamp, body, header, now):
    if header == "ok":
        header = signature(SECRET, timestamp, body)
    assert not verify(SECRET, timestamp, body, header, now=now)


def test_verification_accepts_one_of_several_signatures_while_a_secret_is_rotated():
    body = b"{}"
    header = f"{signature('old-secret-0123456789', 5, body)}, {signature(SECRET, 5, body)}"
    assert verify(SECRET, "5", body, header, now=5)


def test_the_body_is_compact_sorted_json_in_utc():
    body = payload_body("evt_9", "invoice.issued", datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc), "DE01",
                        {"number": "DE01-2026-00001", "invoice_id": 9})
    assert body == (b'{"created_at":"2026-12-07T08:00:00Z","data":{"invoice_id":9,"number":"DE01-2026-00001"},'
                    b'"id":"evt_9","legal_entity":"DE01","type":"invoice.issued"}')
    assert json.loads(body)["data"]["invoice_id"] == 9


@pytest.mark.parametrize("url", ["https://erp.example.com/hooks/arbill", "https://10.0.0.5:8443/h",
                                 "http://localhost:8000/hook", "http://127.0.0.1:5000/", "http://[::1]:9/x"])
def test_urls_accepted(url):
    check_url(url)


@pytest.mark.parametrize("url, words", [
    ("", "enter the receiver's address"),
    ("http://erp.example.com/hook", "use https://"),
    ("ftp://erp.example.com/", "not a web address"),
    ("erp.example.com/hook", "not a web address"),
    ("https://user:pw@erp.example.com/", "no user or password"),
    ("https://erp/hook", "not a full host name"),
    ("https://erp.example.com:99999/", "port"),
    ("https://erp.example.com/a b", "space"),
    ("https://erp.example.com/\nx", "one line"),
])
def test_urls_refused_saying_why(url, words):
    with pytest.raises(ValueError, match=words):
        check_url(url)


def test_secrets_are_long_enough_and_one_line():
    check_secret("x" * 16)
    with pytest.raises(ValueError, match="at least 16 characters"):
        check_secret("x" * 15)
    with pytest.raises(FieldError):
        check_secret("x" * 16 + "\n")
