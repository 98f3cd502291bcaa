#!/usr/bin/env bash
# Start one training worker: wait for the database, apply migrations, then run the worker.
# Settings come from PROFILEKIT_* variables (PROFILEKIT_DATABASE_URL, PROFILEKIT_BROKER_URL, …).
set -euo pipefail
PROFILEKIT="${PROFILEKIT:-profilekit}"
"$PROFILEKIT" db wait --timeout "${PROFILEKIT_DB_WAIT_SECONDS:-60}"
"$PROFILEKIT" db upgrade
# GPU workers use the solo pool: one process owns the device and keeps the backbone loaded.
exec "$PROFILEKIT" worker --pool "${PROFILEKIT_WORKER_POOL:-solo}" --loglevel "${PROFILEKIT_LOG_LEVEL:-INFO}" "$@"
