"""Settings for `run_scenario` when no settings module was chosen: the scenario runner needs only a PostgreSQL server
to create its throw-away database on (the pipeline's writes are PostgreSQL statements) and no secret, Redis or
Celery (it runs with an in-memory cache and channel layer and its own dispatcher). manage.py picks these, so a
scenario runs on a machine where nothing is configured but the local PostgreSQL; DATABASE_URL names another server."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")  # development defaults for secrets nobody uses here
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

from config.settings.base import *  # noqa: F403
