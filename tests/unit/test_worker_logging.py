"""A quiet terminal: the worker keeps the every-minute system jobs out of its INFO lines, not their failures."""
import logging

from worker import HousekeepingFilter


def record(level: int, message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("rq.worker", level, __file__, 1, message, args, None)


def test_system_jobs_are_not_logged_every_minute_but_their_failures_and_real_work_are():
    quiet = HousekeepingFilter()
    assert not quiet.filter(record(logging.INFO, "Worker %s: %s: %s (%s)", "w1", "default", "Job OK", "system-outbox-relay"))
    assert not quiet.filter(record(logging.INFO, "Successfully completed %s job in %ss on worker %s",
                                   "dispatch the event outbox", "0.01", "w1"))
    assert not quiet.filter(record(logging.INFO, "Worker %s: %s: %s (%s)", "w1", "default",
                                   "keep rq-scheduler in step with the schedules", "system-schedule-sync"))
    assert quiet.filter(record(logging.ERROR, "Worker %s: %s: %s (%s)", "w1", "default", "failed", "system-outbox-relay"))
    assert quiet.filter(record(logging.INFO, "Worker %s: %s: %s (%s)", "w1", "billing", "billing run #3 chunk 1",
                               "run-3-chunk-1"))
