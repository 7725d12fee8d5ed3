"""The app's log lines (app/logs.py): a line written inside an RQ job names the job, so an operator finds the
job on the RQ dashboard from a warning in the worker's terminal; outside a job nothing is added."""
import io
import logging

import pytest
from rq import Queue, SimpleWorker

from app.logs import FORMAT, JobContext, configure_logging
from app.queues import get_redis


def _format(record: logging.LogRecord) -> str:
    JobContext().filter(record)
    return logging.Formatter(FORMAT).format(record)


def line_written_in_a_job() -> str:
    record = logging.getLogger("app.billing").makeRecord("app.billing", logging.WARNING, __file__, 1,
                                                         "contract %s skipped", (42,), None)
    return _format(record)


def test_a_line_written_in_a_job_carries_the_job_id(app):
    with app.app_context():
        queue = Queue("default", connection=get_redis())
        job = queue.enqueue(line_written_in_a_job)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)  # a real worker
    line = job.latest_result().return_value
    assert line.endswith(f"WARNING app.billing [job {job.id}]: contract 42 skipped")


def test_a_line_outside_a_job_has_no_job_label():
    assert line_written_in_a_job().endswith("WARNING app.billing: contract 42 skipped")


def test_an_unknown_log_level_is_refused_with_the_levels_to_use(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="LOG_LEVEL 'LOUD' is not a logging level: use DEBUG, INFO"):
        configure_logging(app)
