#!/usr/bin/env bash
# The whole check: migrations up to date, ruff, and pytest against PostgreSQL and Redis.
# DATABASE_URL / REDIS_URL (TEST_REDIS_URL) choose the services; the defaults are the local ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=config.settings.test
export DJANGO_DEBUG=true  # development defaults under the test settings (which still run the tests with DEBUG off)

echo "== migrations are up to date"
# (against a throw-away SQLite file: the check needs no server, and the real databases stay untouched)
mkdir -p var
DATABASE_URL="sqlite:///$PWD/var/migrations-check.sqlite3" $BIN/python manage.py makemigrations --check --dry-run
echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== pytest (PostgreSQL + Redis)"
$BIN/pytest --create-db "$@"
