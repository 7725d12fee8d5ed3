import click
from flask.cli import AppGroup
from rq_scheduler import Scheduler

from app.queues import get_redis

group = AppGroup("scheduler", help="The rq-scheduler process.")


@group.command("run")
@click.option("--interval", default=10, show_default=True, help="Seconds between checks for due jobs.")
@click.option("--burst", is_flag=True, help="Enqueue what is due now, then exit.")
def run(interval: int, burst: bool) -> None:
    """Run rq-scheduler: moves scheduled jobs onto their queues when they are due."""
    scheduler = Scheduler(connection=get_redis(), interval=interval)
    click.echo(f"scheduler checking every {interval}s")
    scheduler.run(burst=burst)
