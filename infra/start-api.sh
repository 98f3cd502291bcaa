#!/usr/bin/env bash
# Start the HTTP API: wait for the database, apply migrations, then serve.
set -euo pipefail
PROFILEKIT="${PROFILEKIT:-profilekit}"
"$PROFILEKIT" db wait --timeout "${PROFILEKIT_DB_WAIT_SECONDS:-60}"
"$PROFILEKIT" db upgrade
exec "$PROFILEKIT" serve --host "${PROFILEKIT_HOST:-0.0.0.0}" --port "${PROFILEKIT_PORT:-8000}" "$@"
