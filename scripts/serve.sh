#!/usr/bin/env bash
# Serve the toolkit in production: gunicorn with config/gunicorn.conf.py and the production
# settings (config.settings_production: every secret and database from the environment, see the
# README's production section). Workers and beat run separately (`celery -A config worker ...`).
#
# Before starting: with SERVE_MIGRATE=1, `migrate_all` (as the owner where DATABASE_OWNER_URL*
# is set), then the deploy checks (an error stops here, naming what is missing; warnings are
# shown). Gunicorn runs in the foreground (exec): SIGTERM stops it gracefully, SIGHUP reloads
# the workers.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings_production}
export PYTHONUNBUFFERED=1

if [ "${SERVE_MIGRATE:-0}" = 1 ]; then
    "$BIN/python" manage.py migrate_all
fi
"$BIN/python" manage.py check --deploy --fail-level ERROR
exec "$BIN/gunicorn" --config config/gunicorn.conf.py config.wsgi
