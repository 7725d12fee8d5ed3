#!/bin/sh
# The container's boot step: the web container migrates (`flask db upgrade`, idempotent); the
# worker and scheduler wait until the schema is at the newest migration, then start.
set -e

schema_at_head() {
  current=$(flask db current 2>/dev/null | awk 'END {print $1}')
  head=$(flask db heads 2>/dev/null | awk 'END {print $1}')
  [ -n "$head" ] && [ "$current" = "$head" ]
}

wait_for_schema() {
  tries=0
  until schema_at_head; do
    tries=$((tries + 1))
    if [ "$tries" -ge "${SCHEMA_WAIT_TRIES:-60}" ]; then
      echo "arbill: the database schema is not at the newest migration; start the web container (it migrates) or run 'flask db upgrade'" >&2
      exit 1
    fi
    sleep 2
  done
}

case "${1:-web}" in
  web)
    flask db upgrade
    exec gunicorn --bind "${BIND_HOST:-0.0.0.0}:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" --threads 4 --access-logfile - wsgi:app ;;
  worker)
    shift; wait_for_schema; exec python worker.py "$@" ;;
  scheduler)
    wait_for_schema; exec flask scheduler run ;;
  *)
    exec "$@" ;;
esac
