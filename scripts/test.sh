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
echo "== chromium for the browser tests"
# Playwright cannot download its own browsers here: it drives Debian's chromium package.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    else
        echo "chromium is missing: run 'sudo apt-get install -y chromium' (browser tests are skipped without it)"
    fi
fi
echo "== pytest (PostgreSQL + Redis)"
$BIN/pytest --create-db "$@"
echo "== browser tests (Playwright + Chromium against a live ASGI server)"
# A separate run: Playwright's sync API keeps an event loop in the test thread for its whole session, which the
# asyncio tests of the main run must not inherit.
$BIN/pytest --create-db -m browser dashboard/tests/browser
