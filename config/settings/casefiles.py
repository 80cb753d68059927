"""Settings for the offline case commands (reconcile_case, size_case, rules_case): pure rules on a file, no server,
no database, no secret. manage.py picks these when one of those commands runs and no settings module was chosen, so
the commands work on a machine with nothing configured, as the specs promise."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")  # development defaults for secrets nobody uses here
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

from config.settings.base import *  # noqa: F403
