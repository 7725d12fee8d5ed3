import click
from flask.cli import AppGroup
from rq_scheduler import Scheduler

from app.queues import get_redis
from app.schedules.sync import HEARTBEAT_KEY, sync_schedules

group = AppGroup("scheduler", help="The rq-scheduler process.")


class HeartbeatScheduler(Scheduler):
    """rq-scheduler that leaves a heartbeat in Redis on every pass, for /healthz."""

    def enqueue_jobs(self):
        self.connection.set(HEARTBEAT_KEY, "alive", ex=max(30, int(self._interval) * 3))
        return super().enqueue_jobs()


@group.command("run")
@click.option("--interval", default=5, show_default=True, help="Seconds between checks for due jobs.")
@click.option("--burst", is_flag=True, help="Sync, enqueue what is due now, then exit.")
def run(interval: int, burst: bool) -> None:
    """Sync the schedules into rq-scheduler, then run it: due jobs move onto their queues."""
    result = sync_schedules()
    click.echo(f"schedules synced: {result.added} added, {result.replaced} replaced, {result.kept} kept, "
               f"{result.cancelled} cancelled; checking every {interval}s")
    HeartbeatScheduler(queue_name="default", connection=get_redis(), interval=interval).run(burst=burst)
