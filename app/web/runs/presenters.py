"""What the run templates need besides the models: shared by the runs and agents blueprints."""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from werkzeug.routing import BuildError

from app.billing.queries import is_active, run_duration
from app.models.runs import RUN_STATUSES


def link_to(endpoint: str, **values: Any) -> str | None:
    """The URL of another area's page when that page exists (e.g. records.contract_detail), else None."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def run_helpers() -> dict[str, Any]:
    """Context for templates that show runs (register as a blueprint context processor)."""
    return {"run_is_active": is_active, "run_duration": run_duration, "link_to": link_to,
            "run_statuses": RUN_STATUSES}
