"""Schedules: when agents fire, kept in the database and handed to rq-scheduler one fire at a time."""
