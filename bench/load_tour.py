"""The tour of bench/load.py, for locust: each simulated person signs in (password and second factor, through the
real forms) as a user of their own, then goes round the pages a finance team looks at on billing day, with a
think time between two pages, until stopped:

    dashboard, runs list, a run (its Contracts tab), its Invoices tab, its Audit tab, AR aging, invoice list,
    an invoice, that invoice's PDF (rendered and stored on its first download, as in production)

A page counts as an error when it does not answer 200, or answers with the sign-in page (the session was lost),
or the PDF is not a PDF. Every request is also written to a CSV file (start time, page, ms, ok) so that
bench/load.py computes its percentiles from the raw times over exactly the window it measures.

Started by bench/load.py as `locust -f bench/load_tour.py --headless ...` with LOAD_TOUR_CONFIG naming a JSON
file: {"users": [{email, password, totp_secret}], "run_id": .., "invoice_ids": [..], "think": [min, max],
"samples": "path.csv"}. Each CSV row: start (epoch s), page, ms, ok (1/0), HTTP status (0: no answer), the error if any.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import random

from locust import HttpUser, SequentialTaskSet, between, events, task

from benchlib.signin import BenchUser, sign_in

CONFIG = json.loads(open(os.environ["LOAD_TOUR_CONFIG"]).read())
USERS = [BenchUser(**u) for u in CONFIG["users"]]
NEXT_USER = itertools.count()
SAMPLES = open(CONFIG["samples"], "a", newline="")
WRITER = csv.writer(SAMPLES)


@events.request.add_listener
def record(request_type, name, response_time, response_length, exception, start_time=None, response=None, **_):
    if SAMPLES.closed:  # locust is quitting: a request it cut short comes after the file was closed
        return
    status = getattr(response, "status_code", 0) or 0  # 0: no answer (connection cut, e.g. by stopping locust)
    WRITER.writerow((f"{start_time:.3f}", name, f"{response_time:.1f}", 0 if exception else 1, status,
                     f"{type(exception).__name__}: {exception}"[:160] if exception else ""))
    SAMPLES.flush()


@events.quitting.add_listener
def close(**_):
    SAMPLES.close()


class Tour(SequentialTaskSet):
    def page(self, name: str, path: str, pdf: bool = False) -> None:
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != 200:  # 0: no answer; locust keeps the connection error in .error
                response.failure(f"{response.status_code} {response.error or response.reason or ''}".strip())
            elif response.url.split("?")[0].endswith("/login"):
                response.failure("signed out: got the sign-in page")
            elif pdf and not response.content.startswith(b"%PDF"):
                response.failure("not a PDF")
            else:
                response.success()

    @task
    def dashboard(self):
        self.invoice_id = random.choice(CONFIG["invoice_ids"])
        self.page("dashboard", "/")

    @task
    def runs(self):
        self.page("runs", "/runs")

    @task
    def run_contracts(self):
        self.page("run: contracts", f"/runs/{CONFIG['run_id']}")

    @task
    def run_invoices(self):
        self.page("run: invoices", f"/runs/{CONFIG['run_id']}/invoices")

    @task
    def run_audit(self):
        self.page("run: audit", f"/runs/{CONFIG['run_id']}/audit")

    @task
    def aging(self):
        self.page("aging", "/reports/aging")

    @task
    def invoices(self):
        self.page("invoices", "/invoices")

    @task
    def invoice(self):
        self.page("invoice", f"/invoices/{self.invoice_id}")

    @task
    def pdf(self):
        self.page("PDF", f"/invoices/{self.invoice_id}/pdf", pdf=True)


class Person(HttpUser):
    tasks = [Tour]
    wait_time = between(*CONFIG["think"])

    def on_start(self):
        user = USERS[next(NEXT_USER) % len(USERS)]

        def get_text(path):
            return self.client.get(path, name="sign-in").text

        def post(path, data, headers):
            response = self.client.post(path, data=data, headers=headers, name="sign-in", allow_redirects=False)
            return response.status_code, response.headers.get("Location", "")

        sign_in(get_text, post, user)
