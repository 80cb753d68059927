"""How the processes hold PostgreSQL connections (read by the settings; see docs/ARCHITECTURE.md, "Database
connections").

Celery workers and beat are synchronous processes with a few long-lived threads: one persistent connection per
thread (CONN_MAX_AGE) is right for them. The web process is not: under ASGI Django runs every request's sync code
on a thread of its own, and a persistent connection belongs to the request that opened it, so each concurrent
request opened (and leaked until garbage collection) a connection of its own, and 100 concurrent requests met
PostgreSQL's `max_connections` ("sorry, too many clients already", answered as 500s). The web process therefore
uses a bounded connection pool (psycopg 3's, through Django's `OPTIONS["pool"]`): at most DJANGO_DB_POOL_MAX_SIZE
connections whatever the number of requests; a request waits for a free connection up to DJANGO_DB_POOL_TIMEOUT
seconds and is then answered 503 with Retry-After (core/errors.py), never 500.

`config/asgi.py` turns the pool on (DJANGO_DB_POOL defaults to true there, false elsewhere); set
DJANGO_DB_POOL=false when PgBouncer (transaction mode) pools in front of PostgreSQL instead.
"""

from typing import Any

from config.env import env

POSTGRESQL_ENGINE = "django.db.backends.postgresql"


def pool_options() -> dict[str, Any]:
    """psycopg_pool.ConnectionPool arguments from the environment."""
    min_size = env.int("DJANGO_DB_POOL_MIN_SIZE", default=2)
    max_size = env.int("DJANGO_DB_POOL_MAX_SIZE", default=10)
    if max_size < 1 or not 0 <= min_size <= max_size:
        raise ValueError(
            f"DJANGO_DB_POOL_MIN_SIZE={min_size} / DJANGO_DB_POOL_MAX_SIZE={max_size}: need 0 <= min <= max, max >= 1"
        )
    return {
        "min_size": min_size,
        "max_size": max_size,
        # seconds a request waits for a free connection before it is answered 503
        "timeout": env.float("DJANGO_DB_POOL_TIMEOUT", default=5.0),
        # a connection is replaced after this long (PostgreSQL backends grow with the caches of what they ran)
        "max_lifetime": env.float("DJANGO_DB_POOL_MAX_LIFETIME", default=1800.0),
        "name": "web",
    }


def configure_connections(database: dict[str, Any], *, conn_max_age: int) -> dict[str, Any]:
    """The settings of the `default` database for this process: pooled when DJANGO_DB_POOL is on (PostgreSQL only;
    a pool replaces persistent connections, which Django refuses to combine with it), persistent otherwise."""
    if database["ENGINE"] == POSTGRESQL_ENGINE and env.bool("DJANGO_DB_POOL", default=False):
        database["CONN_MAX_AGE"] = 0
        database["OPTIONS"] = {**database.get("OPTIONS", {}), "pool": pool_options()}
    else:
        database["CONN_MAX_AGE"] = conn_max_age
    return database
