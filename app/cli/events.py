import click
from flask.cli import AppGroup

from app.agents.events import handling_grace_seconds, pending_handlings, relay_outbox, requeue_unhandled
from app.cli.common import echo_json

group = AppGroup("events", help="The event outbox.")


@group.command("relay")
def relay():
    """Dispatch the outbox once, then enqueue again the agents' jobs that Redis lost."""
    result = relay_outbox()
    watched = requeue_unhandled()
    click.echo(f"Dispatched {result.dispatched} event(s); enqueued {result.jobs} agent job(s)"
               + (f"; stopped {result.stopped} (loop guard)" if result.stopped else "")
               + (f"; enqueued {watched.requeued} lost job(s) again" if watched.requeued else "")
               + (f"; {watched.failed} agent job(s) failed for good (see `flask events pending`)" if watched.failed else "")
               + ".")


@group.command("pending")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def pending(as_json: bool, limit: int) -> None:
    """Events a subscribed agent has not acted on past the grace period (EVENT_HANDLING_GRACE_SECONDS)."""
    rows = pending_handlings(limit=limit)
    if as_json:
        echo_json([{"event_id": p.event_id, "type": p.type, "agent": p.agent, "age_s": p.age_s, "status": p.status,
                    "enqueues": p.enqueues, "error": p.error} for p in rows])
        return
    if not rows:
        click.echo(f"Every event older than {handling_grace_seconds()} s has been acted on by its agents.")
        return
    for p in rows:
        click.echo(f"event {p.event_id:<8} {p.type:<24} {p.agent:<20} {p.age_s:>7} s  {p.status}"
                   + (f" (enqueued {p.enqueues}x)" if p.enqueues > 1 else "") + (f": {p.error}" if p.error else ""))
