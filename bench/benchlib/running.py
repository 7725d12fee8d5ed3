"""The frame of a bench on a throw-away database: create it, migrate the app onto it, run the measurement, and
drop it at the end whatever happens (an error, Ctrl-C, SIGTERM)."""
from __future__ import annotations

from .database import BenchDatabase, clean_up, create_app_on
from .options import ignore_signals, interrupt_on_sigterm
from .timing import say


def on_fresh_database(args, prefix: str, measure) -> int:
    """`measure(bench, app)` on a new `<prefix>_<random>` database on the server of `args.db` (app configured with
    `args.redis`); its return value is the exit code; 130 when interrupted. `--keep-db` keeps the database."""
    interrupt_on_sigterm()
    bench = BenchDatabase.new(args.db, prefix)
    created, app = False, None
    try:
        bench.create()
        created = True
        app = create_app_on(bench, args.redis)
        return measure(bench, app)
    except KeyboardInterrupt as interrupt:
        say(f"\ninterrupted ({interrupt or 'Ctrl-C'}): cleaning up")
        return 130
    finally:
        ignore_signals()
        clean_up(app, bench, created, args.keep_db, None, say)
