"""People who sign in to a bench's web app as people do: a user with a password and an enrolled second factor
(TOTP, as if set up in an authenticator app), and the two-step sign-in through the real forms (CSRF token from
the login page, password, then the current code). One place for aging.py (Flask test client) and load.py
(locust's HTTP session, against gunicorn)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class BenchUser:
    email: str
    password: str
    totp_secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


def create_bench_user(email: str, role: str, password: str, actor, entity=None,
                      totp_secret: str | None = None) -> BenchUser:
    """A user with `role` (in `entity` only, or in all), enrolled with a second factor. Inside an app context;
    the caller commits."""
    from app.accounts import create_user
    from app.models.types import utcnow

    secret = totp_secret or pyotp.random_base32()
    user = create_user(email, role, password, actor, entity=entity)
    user.totp_secret, user.totp_enabled_at = secret, utcnow()  # as if enrolled
    return BenchUser(email, password, secret)


def sign_in(get_text, post, user: BenchUser) -> None:
    """The two-step sign-in. `get_text(path)` returns a page's HTML; `post(path, data, headers)` returns
    (status code, Location header or "") without following redirects. Raises RuntimeError if refused."""
    token = CSRF_META.search(get_text("/login")).group(1)
    headers = {"X-CSRFToken": token}
    status, location = post("/login", {"email": user.email, "password": user.password}, headers)
    if status == 302 and location.endswith("/login/second-factor"):
        status, location = post("/login/second-factor", {"code": user.code()}, headers)
    if status != 302 or "/login" in location:
        raise RuntimeError(f"sign-in of {user.email} refused: {status} {location}")


def signed_in_test_client(app, user: BenchUser):
    """A Flask test client signed in as `user`."""
    client = app.test_client()

    def post(path, data, headers):
        response = client.post(path, data=data, headers=headers)
        return response.status_code, response.headers.get("Location", "")

    sign_in(lambda path: client.get(path).get_data(as_text=True), post, user)
    return client
