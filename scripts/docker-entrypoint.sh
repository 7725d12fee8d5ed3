#!/bin/sh
# The container's boot step: `flask db upgrade` (idempotent), then the named process.
set -e
case "${1:-web}" in
  web)
    flask db upgrade
    exec gunicorn --bind "${BIND_HOST:-0.0.0.0}:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" --threads 4 --access-logfile - wsgi:app ;;
  worker)
    shift; exec python worker.py "$@" ;;
  scheduler)
    exec flask scheduler run ;;
  *)
    exec "$@" ;;
esac
