#!/usr/bin/env bash
# make chaos: fault-injection tests. Each test starts a private Redis and PostgreSQL on free ports (never the
# machine's own services) and the real processes against them, injects a fault and checks the invariants.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=config.settings.test
command -v redis-server >/dev/null || { echo "make chaos needs redis-server (apt-get install redis-server)" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || {
  echo "make chaos needs PostgreSQL's server binaries (apt-get install postgresql)" >&2; exit 1; }
.venv/bin/pytest -m chaos chaos/ "$@"
