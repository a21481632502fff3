#!/usr/bin/env bash
# Serve the toolkit on the embedded default (or whatever the environment configures):
# migrate every database, load demo data, start a Celery worker (all region queues, with beat)
# and the web server; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings}

"$BIN/python" manage.py migrate_all
"$BIN/python" manage.py load_demo
VAR_DIR=$("$BIN/python" -c "from django.conf import settings; import django; django.setup(); print(settings.VAR_DIR)")
QUEUES=$("$BIN/python" -c "import django; django.setup(); from config.celery import app; print(','.join(q.name for q in app.conf.task_queues))")

"$BIN/celery" -A config worker -Q "$QUEUES" --concurrency=2 --loglevel=INFO \
    --beat --schedule "$VAR_DIR/celerybeat-schedule" >"$VAR_DIR/worker.log" 2>&1 &
WORKER=$!
"$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload &
WEB=$!

stop() {
    trap - INT TERM EXIT
    echo "stopping web server and worker..."
    kill -TERM "$WEB" "$WORKER" 2>/dev/null || true
    wait "$WEB" 2>/dev/null || true
    wait "$WORKER" 2>/dev/null || true
    echo "stopped."
    exit 0
}
trap stop INT TERM EXIT

echo "Celery worker (queues $QUEUES) log: $VAR_DIR/worker.log"
echo "Serving http://127.0.0.1:$PORT/  -  log in at http://127.0.0.1:$PORT/admin/ (logins above). Ctrl-C stops."
wait -n "$WEB" "$WORKER" || true
stop
