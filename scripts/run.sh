#!/usr/bin/env bash
# make run: find (or start) Redis, migrate, create demo users and accounts, then run every process in the
# foreground with honcho; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=config.settings.base
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
mkdir -p var

redis_answers() { $BIN/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=1).ping()" "$1" 2>/dev/null; }

procfile=Procfile.dev
if [ -n "${REDIS_URL:-}" ]; then
  redis_answers "$REDIS_URL" || { echo "REDIS_URL=$REDIS_URL does not answer." >&2; exit 1; }
elif redis_answers "redis://127.0.0.1:6379/0"; then
  export REDIS_URL="redis://127.0.0.1:6379/0"
elif command -v redis-server >/dev/null 2>&1; then
  echo "No Redis on 127.0.0.1:6379; starting redis-server on 127.0.0.1:6390 for this session."
  redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --dir var --logfile redis.log
  export REDIS_URL="redis://127.0.0.1:6390/0"
  trap 'redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true' EXIT
  for _ in 1 2 3 4 5 6 7 8 9 10; do redis_answers "$REDIS_URL" && break; sleep 0.3; done
else
  cat >&2 <<MSG
Redis is needed (Celery broker, cache and websocket channel layer) and none was found:
  - set REDIS_URL to a Redis you have, or
  - install one: sudo apt-get install redis-server   (Debian/Ubuntu), then run make run again.
MSG
  exit 1
fi
echo "Using Redis at $REDIS_URL"

# PostgreSQL: the sync writes in PostgreSQL statements (one batched statement per sync, upserts), as in production.
db_answers() { $BIN/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=2).close()" "$1" 2>/dev/null; }
if [ -z "${DATABASE_URL:-}" ]; then
  if db_answers "postgresql://postgres@127.0.0.1:5432/postgres"; then
    $BIN/python - <<'PY'
import psycopg
with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'mt5guard'").fetchone():
        conn.execute("CREATE DATABASE mt5guard")
PY
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5guard"
  else
    cat >&2 <<MSG
PostgreSQL is needed and none answers on 127.0.0.1:5432 as user postgres:
  - set DATABASE_URL to a PostgreSQL database you have (postgres://USER:PASSWORD@HOST:5432/NAME), or
  - install one: sudo apt-get install postgresql, allow local trust (or set DATABASE_URL), then run make run again.
MSG
    exit 1
  fi
fi
echo "Using PostgreSQL from DATABASE_URL"  # (not printed: it may hold a password)

export MT5_BRIDGE_SECRET="${MT5_BRIDGE_SECRET:-development-bridge-secret}"
export MT5_BRIDGE_URL="${MT5_BRIDGE_URL:-http://127.0.0.1:18812}"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py setup_periodic_tasks
$BIN/python manage.py seed_demo_users
echo
echo "Admin: http://127.0.0.1:8000/admin/  (Ctrl-C stops everything)"
exec $BIN/honcho -f "$procfile" start
