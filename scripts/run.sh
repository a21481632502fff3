#!/usr/bin/env bash
# Serve the toolkit on the embedded default (or whatever the environment configures):
# migrate every database, load the demo story, then run the web server and a supervised Celery
# worker (all region queues, with beat).
#
# The worker is supervised: when it dies it is started again (after 1, 2, 4 ... up to 30 s when
# it keeps dying) and the console says why, with the last error lines of its log. The web
# server never goes down because of the worker. Ctrl-C (or SIGTERM) stops both, and waits
# for the worker to finish or hand back its current task.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
export PORT
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings}
export PYTHONUNBUFFERED=1

"$BIN/python" manage.py migrate_all
"$BIN/python" manage.py load_demo
read -r VAR_DIR QUEUES BROKER < <("$BIN/python" -c "
import django; django.setup()
from django.conf import settings
from config.celery import app
print(settings.VAR_DIR, ','.join(q.name for q in app.conf.task_queues), settings.CELERY_BROKER_URL.split('://')[0])
")
WORKER_LOG="$VAR_DIR/worker.log"
BEAT_SCHEDULE="$VAR_DIR/celerybeat-schedule"

WEB=""
WORKER=""
STOPPING=""
RESTARTS=0

start_worker() {
    WORKER_STARTED=$(date +%s)
    WORKER_LOG_FROM=$(($(stat -c %s "$WORKER_LOG" 2>/dev/null || echo 0) + 1))
    echo "=== worker started $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$WORKER_LOG"
    # its own process group: when it dies, its pool and beat processes go with it (no orphaned
    # beat sending twice); Ctrl-C reaches it through stop(), as a warm shutdown
    setsid "$BIN/celery" -A config worker -Q "$QUEUES" --concurrency=2 --loglevel=INFO \
        --without-gossip --without-mingle --hostname "run-$$@%h" \
        --beat --schedule "$BEAT_SCHEDULE" >>"$WORKER_LOG" 2>&1 &
    WORKER=$!
}

worker_died() {
    local code=$1 why
    set +e
    kill -KILL -- "-$WORKER" 2>/dev/null  # whatever is left of it (pool, beat)
    why="exit code $code"
    if ((code > 128)); then
        why="killed by signal $((code - 128)) ($(kill -l $((code - 128)) 2>/dev/null || echo '?'))"
    fi
    echo
    echo "!! the Celery worker stopped ($why). Last error lines of $WORKER_LOG:"
    local lines
    lines=$(tail -c "+$WORKER_LOG_FROM" "$WORKER_LOG" 2>/dev/null \
        | grep -E "ERROR|CRITICAL|Traceback|Unrecoverable|[A-Za-z]+(Error|Exception)\b" \
        | grep -v "_warn_or_raise_security_error" | tail -n 8 || true)
    if [ -n "$lines" ]; then
        sed 's/^/   | /' <<<"$lines"
    else
        echo "   | (none: it was stopped from outside, e.g. kill -9 or out of memory)"
    fi
    # a worker killed while beat wrote its schedule may leave it unreadable: start afresh
    # (periodic jobs then run once at start; they are idempotent)
    rm -f "$BEAT_SCHEDULE" "$BEAT_SCHEDULE".*
    local alive_for=$(($(date +%s) - WORKER_STARTED))
    if ((alive_for >= 60)); then RESTARTS=0; fi
    local pause=$((1 << (RESTARTS < 5 ? RESTARTS : 5)))
    ((pause > 30)) && pause=30
    RESTARTS=$((RESTARTS + 1))
    echo "!! restarting the worker in ${pause}s (the web server keeps serving; unfinished tasks are delivered again)"
    sleep "$pause" &
    wait $! || true
}

wait_gone() {  # wait up to $2 seconds for pid $1 to exit
    local pid=$1 limit=$(($2 * 10)) i=0
    while kill -0 "$pid" 2>/dev/null && ((i < limit)); do
        sleep 0.1
        i=$((i + 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

stop() {
    local code=${1:-0}
    set +e  # a part that is already gone must not cut the stopping short
    trap - INT TERM EXIT
    STOPPING=1
    echo
    echo "stopping web server and worker..."
    [ -n "$WEB" ] && kill -TERM "$WEB" 2>/dev/null
    [ -n "$WORKER" ] && kill -TERM "$WORKER" 2>/dev/null
    # the worker finishes its current task (or hands it back to the broker) first
    if [ -n "$WORKER" ] && ! wait_gone "$WORKER" 60; then
        echo "the worker did not stop within 60 s; stopping it now (its task is delivered again)"
    fi
    [ -n "$WORKER" ] && kill -KILL -- "-$WORKER" 2>/dev/null
    if [ -n "$WEB" ] && ! wait_gone "$WEB" 10; then
        kill -KILL "$WEB" 2>/dev/null
    fi
    wait 2>/dev/null
    echo "stopped."
    exit "$code"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

start_worker
"$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload &
WEB=$!

echo "Celery worker (queues $QUEUES, broker $BROKER://, supervised) log: $WORKER_LOG"
echo "Serving http://127.0.0.1:$PORT/  -  log in at http://127.0.0.1:$PORT/admin/ (logins and demo people above). Ctrl-C stops."

while [ -z "$STOPPING" ]; do
    set +e
    wait -n -p DONE "$WEB" "$WORKER"
    code=$?
    set -e
    if [ "${DONE:-}" = "$WEB" ]; then
        echo "!! the web server stopped (exit code $code)"
        stop 1
    elif [ "${DONE:-}" = "$WORKER" ]; then
        worker_died "$code"
        set -e
        [ -z "$STOPPING" ] && start_worker
    fi
done
