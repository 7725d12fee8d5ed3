from flask import jsonify
from rq import Worker
from sqlalchemy import func, select, text

from app.agents.events import pending_summary
from app.extensions import csrf, db
from app.models import InvoiceDelivery
from app.queues import get_redis
from app.schedules.sync import scheduler_alive
from app.web.ops import bp


@bp.get("/healthz")
@csrf.exempt
def healthz():
    """Database, Redis, live workers, scheduler, events not acted on: 200 when the database and Redis
    answer, else 503."""
    report: dict = {}
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
        # Events an agent has not acted on past the grace period (flask events pending lists them).
        report["events_pending"], report["oldest_pending_event_age_s"] = pending_summary()
        report["deliveries_outcome_unknown"] = db.session.scalar(
            select(func.count()).select_from(InvoiceDelivery).where(InvoiceDelivery.status == "unknown"))
    except Exception as error:  # noqa: BLE001
        report["database"] = f"error: {type(error).__name__}"
    finally:
        db.session.rollback()
    try:
        connection = get_redis()
        connection.ping()
        report["redis"] = "ok"
        report["workers"] = Worker.count(connection=connection)
        report["scheduler"] = "alive" if scheduler_alive(connection) else "not running"
    except Exception as error:  # noqa: BLE001
        report["redis"] = f"error: {type(error).__name__}"
        report["workers"] = None
        report["scheduler"] = "unknown"
    healthy = report["database"] == "ok" and report["redis"] == "ok"
    report["status"] = "ok" if healthy else "unavailable"
    return jsonify(report), 200 if healthy else 503
