"""Test helpers for the confirm steps (app/confirmations.py): read a preview's Confirm form, press it."""
from __future__ import annotations

import html as html_lib
import re

_FORM = r'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>'
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def confirm_fields(page: str, form_id: str) -> dict[str, str]:
    """The hidden fields of the Confirm form `form_id` in `page` (no csrf_token: the test client adds it)."""
    found = re.search(_FORM.format(form_id=re.escape(form_id)), page, re.S)
    assert found, f"no form #{form_id} in the answer"
    fields = {name: html_lib.unescape(value) for name, value in _INPUT.findall(found.group(1))}
    fields.pop("csrf_token", None)
    return fields


def confirm_action(page: str, form_id: str) -> str:
    found = re.search(r'<form[^>]*action="([^"]+)"[^>]*id="{}"'.format(re.escape(form_id)), page, re.S)
    assert found, f"no form #{form_id} in the answer"
    return html_lib.unescape(found.group(1))


def confirm_pairs(page: str, form_id: str) -> list[tuple[str, str]]:
    """confirm_fields, keeping every value of a repeated name (a selection's `invoice` ids), in page order."""
    found = re.search(_FORM.format(form_id=re.escape(form_id)), page, re.S)
    assert found, f"no form #{form_id} in the answer"
    return [(name, html_lib.unescape(value)) for name, value in _INPUT.findall(found.group(1)) if name != "csrf_token"]
