#!/usr/bin/env bash
# Start evalsvc on embedded defaults: SQLite and a filesystem broker under var/.
# Web server, a Celery worker for jobs, one for latency profiles, one for upload validation and Celery beat run together; Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-evalsvc.settings.local}
VAR=${EVALSVC_VAR_DIR:-var}
mkdir -p "$VAR/log" "$VAR/tmp" "$VAR/broker/queue" "$VAR/broker/processed"

echo "Preparing the database ($VAR) ..."
$BIN/python manage.py migrate --noinput --verbosity 0

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$BIN/celery -A evalsvc worker -Q cpu -c 1 -n cpu@%h --loglevel=INFO >"$VAR/log/worker.log" 2>&1 &
pids+=($!)
# Latency profiles have a worker of their own, one job at a time, so an evaluation never waits behind one.
$BIN/celery -A evalsvc worker -Q profile -c 1 -n profile@%h --loglevel=INFO >"$VAR/log/profile-worker.log" 2>&1 &
pids+=($!)
# Large uploads are validated on their own queue and worker, so an upload never waits behind a long job.
$BIN/celery -A evalsvc worker -Q registry -c 1 -n registry@%h --loglevel=INFO >"$VAR/log/registry-worker.log" 2>&1 &
pids+=($!)
$BIN/celery -A evalsvc beat --loglevel=INFO --pidfile= >"$VAR/log/beat.log" 2>&1 &
pids+=($!)

# Demo data; its evaluation runs are submitted once the worker has reported in.
$BIN/python manage.py seed_demo --wait-for-worker 120

cat <<MSG

  evalsvc is starting at http://$HOST:$PORT/
  sign in as  demo / evalsvc-demo   (owner of the demo team)
  API docs    http://$HOST:$PORT/api/docs/
  logs        $VAR/log/worker.log, $VAR/log/profile-worker.log, $VAR/log/registry-worker.log, $VAR/log/beat.log

MSG
$BIN/python manage.py runserver "$HOST:$PORT"
