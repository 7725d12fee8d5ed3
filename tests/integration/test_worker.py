"""worker.py: delivery jobs run in the worker process (warm), other queues' jobs in a forked work horse.

The jobs are standard-library functions: the worker imports a job's function by its dotted name.
"""
import os
import signal
import subprocess
import sys
import time

from rq import Queue

from app.queues import get_redis
from tests.conftest import ROOT


def run_worker(*queues: str) -> tuple[int, int, str]:
    """(worker pid, exit status, output) of `python worker.py --burst QUEUE...`."""
    worker = subprocess.Popen([sys.executable, "worker.py", "--burst", *queues], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output = worker.communicate(timeout=120)[0]
    return worker.pid, worker.returncode, output


def test_delivery_jobs_run_in_the_worker_and_billing_jobs_in_a_work_horse(app):
    with app.app_context():
        delivery = Queue("delivery", connection=get_redis()).enqueue(os.getpid)
        billing = Queue("billing", connection=get_redis()).enqueue(os.getpid)
        pid, status, output = run_worker("billing", "delivery")
        assert status == 0, output  # no crash at exit either (the fonts are freed before Pango)
        assert delivery.return_value(refresh=True) == pid
        assert billing.return_value(refresh=True) not in (None, pid)


def test_an_in_process_job_still_times_out_and_the_worker_goes_on(app):
    with app.app_context():
        queue = Queue("delivery", connection=get_redis())
        slow = queue.enqueue(time.sleep, 30, job_timeout=1)
        after = queue.enqueue(os.getpid)
        pid, status, output = run_worker("delivery")
        assert status == 0, output
        slow.refresh()  # cut off at its timeout (a 30 s sleep that ran through would be finished, not failed)
        assert slow.is_failed and "JobTimeoutException" in (slow.latest_result().exc_string or "")
        assert after.return_value(refresh=True) == pid


def test_sigterm_lets_an_in_process_job_finish_then_the_worker_stops(app):
    with app.app_context():
        job = Queue("delivery", connection=get_redis()).enqueue(time.sleep, 3)
        worker = subprocess.Popen([sys.executable, "worker.py", "delivery"], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) != "started":
            assert time.monotonic() < deadline and worker.poll() is None, worker.stdout.read()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0]
        assert worker.returncode == 0, output
        assert job.get_status(refresh=True) == "finished"


def test_a_burst_worker_runs_no_scheduler_process_and_exits(app):
    # A burst worker moves due scheduled jobs once; a scheduler process started after its first job
    # could miss the SIGTERM of the worker's exit and hold the exit for ever (CI saw a 180 s hang).
    with app.app_context():
        jobs = [Queue("delivery", connection=get_redis()).enqueue(os.getpid) for _ in range(2)]
        pid, status, output = run_worker("delivery")
        assert status == 0, output
        assert all(job.return_value(refresh=True) == pid for job in jobs)
        assert "Acquired scheduler lock for delivery" in output  # it was the one to schedule
        assert "Scheduler for delivery started" not in output, output
