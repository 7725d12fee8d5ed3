"""Every page but the login page needs a login: one test per route of the URL map."""
import re

import pytest

from app import create_app
from config import TestingConfig

# Pages for people who cannot sign in yet: a forgotten password, an invitation (tests/web/test_password_reset.py,
# test_invitations.py show what they answer without a login).
PUBLIC = {"auth.login", "static", "ops.healthz",
          "auth.forgot_password", "auth.reset_requested", "auth.reset_password", "auth.accept_invitation"}


def _routes():
    application = create_app(TestingConfig())
    for rule in application.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        yield pytest.param(method, path, id=f"{method} {rule.rule}")


@pytest.mark.parametrize("method, path", list(_routes()))
def test_route_needs_login(client, method, path):
    response = client.get(path) if method == "GET" else client.post(path)
    assert response.status_code == 302, f"{method} {path} answered {response.status_code} without a login"
    assert response.headers["Location"].startswith("/login")
