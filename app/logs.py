"""Logging for the web app, the CLI and the workers: one format, the RQ job id on every line a job writes.

`configure_logging(app)` runs in the app factory. It gives the `app` logger (every module logs under
`app.…`) the level `LOG_LEVEL` (default INFO) and one stream handler on stderr, unless the root logger already
has handlers (pytest's capture, a host's own configuration): the records propagate to the root either way. Inside a worker job every record
carries `job` (" [job 3f2c…]"), so a line about contract 42 is found again with the job the RQ dashboard shows.
"""
from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s"
_HANDLER_MARK = "_arbill_handler"


class JobContext(logging.Filter):
    """Adds `job` to each record: " [job <id>]" inside an RQ job, "" elsewhere. As a handler filter it sees
    every record the handler writes, whichever logger made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job"):
            record.job = job_label()
        return True


def job_label() -> str:
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:  # no RQ context (web request, CLI): nothing to add
        job = None
    return f" [job {job.id}]" if job is not None else ""


def configure_logging(app) -> None:
    level = logging.getLevelName(str(app.config.get("LOG_LEVEL", "INFO")).upper())
    if not isinstance(level, int):
        raise ValueError(f"LOG_LEVEL {app.config.get('LOG_LEVEL')!r} is not a logging level: use DEBUG, INFO, "
                         "WARNING or ERROR")
    logger = logging.getLogger("app")
    logger.setLevel(level)
    if any(getattr(h, _HANDLER_MARK, False) for h in logger.handlers) or logging.getLogger().handlers:
        return  # already done (the factory runs more than once in a process), or the host logs (pytest, gunicorn)
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(JobContext())
    logger.addHandler(handler)


def add_job_context(handler: logging.Handler, log_format: str | None = None) -> None:
    """Puts the job id on a handler's lines that another library set up (RQ's worker handler)."""
    handler.addFilter(JobContext())
    if log_format:
        handler.setFormatter(logging.Formatter(log_format))
