#!/usr/bin/env bash
# The whole check: migrations up to date, ruff, and pytest against PostgreSQL and Redis.
# DATABASE_URL / REDIS_URL (TEST_REDIS_URL) choose the services; the defaults are the local ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=config.settings.test

echo "== migrations are up to date"
$BIN/python manage.py makemigrations --check --dry-run
echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== pytest (PostgreSQL + Redis)"
$BIN/pytest --create-db "$@"
