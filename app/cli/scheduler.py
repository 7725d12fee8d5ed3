import logging

import click
from flask.cli import AppGroup

from app.queues import REDIS_DOWN, get_redis
from app.schedules.process import HeartbeatScheduler, SchedulerProcess
from app.schedules.sync import sync_schedules

__all__ = ["HeartbeatScheduler", "group"]

group = AppGroup("scheduler", help="The rq-scheduler process.")


@group.command("run")
@click.option("--interval", default=5, show_default=True, help="Seconds between checks for due jobs.")
@click.option("--burst", is_flag=True, help="Sync, enqueue what is due now, then exit.")
def run(interval: int, burst: bool) -> None:
    """Sync the schedules into rq-scheduler, then run it: due jobs move onto their queues.

    Also looks after running billing runs (re-queues the jobs of dead workers) and rides out Redis outages.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    process = SchedulerProcess(queue_name="default", connection=get_redis(), interval=interval)
    while True:
        try:
            result = sync_schedules()
            break
        except REDIS_DOWN as error:
            process.outage.wait(error)
    click.echo(f"schedules synced: {result.added} added, {result.replaced} replaced, {result.kept} kept, "
               f"{result.cancelled} cancelled; checking every {interval}s")
    process.run(burst=burst)
