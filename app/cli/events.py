import click
from flask.cli import AppGroup

from app.agents.events import relay_outbox

group = AppGroup("events", help="The event outbox.")


@group.command("relay")
def relay():
    """Dispatch the outbox once: enqueue the subscribed agents' jobs, mark events dispatched."""
    result = relay_outbox()
    click.echo(f"Dispatched {result.dispatched} event(s); enqueued {result.jobs} agent job(s)"
               + (f"; stopped {result.stopped} (loop guard)" if result.stopped else "") + ".")
