"""Flask commands: a scripting interface. Each command is thin and calls a service."""
from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from app.cli import (agents, audit, bank, billing, contracts, customers, demo, dunning, entities, events, invoices,
                         payments, scheduler, schedules, sepa, taxcodes, users)

    for group in (users.group, entities.group, contracts.group, demo.group, billing.group, invoices.group,
                  events.group, agents.group, scheduler.group, schedules.group, taxcodes.group,
                  sepa.group, customers.group, payments.group, bank.group, audit.group, dunning.group):
        app.cli.add_command(group)
