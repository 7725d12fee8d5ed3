"""`make run`'s launcher on embedded defaults: migrates, seeds, serves the login, stops everything."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import psutil
import pyotp

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_starts_every_process_on_embedded_defaults_and_ctrl_c_stops_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "MAIL_SERVER", "MAIL_PORT"}}
    port, mail_port = _free_port(), _free_port()
    env.update(ARBILL_INSTANCE_DIR=str(tmp_path / "instance"), PORT=str(port), MAIL_PORT=str(mail_port))
    log = open(tmp_path / "run.log", "w+")
    launcher = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                page = urllib.request.urlopen(f"{base}/login", timeout=2).read().decode()
                break
            except OSError:
                assert launcher.poll() is None, (tmp_path / "run.log").read_text()
                time.sleep(0.5)
        else:
            raise AssertionError("no login page:\n" + (tmp_path / "run.log").read_text())
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/" in output and "admin@arbill.example / arbill-demo-admin" in output
        assert (tmp_path / "instance" / "arbill.db").exists() and (tmp_path / "instance" / "redis.sock").exists()

        # The demo admin can log in: the first time, setting up two-step sign-in (as an authenticator app would).
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        data = urlencode({"csrf_token": token, "email": "admin@arbill.example", "password": "arbill-demo-admin"}).encode()
        enrol = opener.open(f"{base}/login", data=data).read().decode()
        assert "Set up two-step sign-in" in enrol
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', enrol).group(1)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', enrol).group(1)
        codes = opener.open(f"{base}/login/enrol", data=urlencode({"csrf_token": token,
                                                                   "code": pyotp.TOTP(secret).now()}).encode())
        assert "Your recovery codes" in codes.read().decode()
        dashboard = opener.open(f"{base}/").read().decode()
        assert "Dashboard" in dashboard and "admin@arbill.example" in dashboard

        processes = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        for expected in ("redis-server", "app.mailsink", "gunicorn", "worker.py", "scheduler run"):
            assert expected in names, names
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        launcher.wait(60)
    time.sleep(0.5)
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
