from flask import jsonify
from rq import Worker
from sqlalchemy import text

from app.extensions import csrf, db
from app.queues import get_redis
from app.schedules.sync import scheduler_alive
from app.web.ops import bp


@bp.get("/healthz")
@csrf.exempt
def healthz():
    """Database, Redis, live workers, scheduler: 200 when the database and Redis answer, else 503."""
    report: dict = {}
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
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
