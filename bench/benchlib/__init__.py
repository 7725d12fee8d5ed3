"""What the benchmarks share, so that each bench holds only what it measures.

    database   a throw-away database (PostgreSQL, or SQLite where a bench runs on it), the app on it,
               migrations, COPY helpers, the way back to the seeded state, the clean-up
    workers    real `python worker.py <queue>` processes: started, waited for, sampled, stopped
    sampling   CPU time (this process, PostgreSQL backends, the whole machine) and RSS
    timing     medians, a timed call, `say`
    options    the argparse options every bench takes (--db, --redis, --keep-db, --smoke) and their checks
    running    the frame of a bench on a throw-away database: create, migrate, measure, drop whatever happens
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from .database import (BenchDatabase, SeededState, SqliteDatabase, clean_up, copy_into,  # noqa: E402
                       create_app_on, is_sqlite, make_config, migrate, set_serials)

__all__ = ["ROOT", "BenchDatabase", "SeededState", "SqliteDatabase", "clean_up", "copy_into", "create_app_on",
           "is_sqlite", "make_config", "migrate", "set_serials"]
