"""Settings of the server bench_api.py starts: the test settings on the bench's throw-away database, plus one bare
view (bench/api_urls.py) to compare the cached API read with. Never used outside the benchmark."""

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES, REST_FRAMEWORK

DATABASES["default"]["NAME"] = os.environ["BENCH_API_DB"]
ROOT_URLCONF = "bench.api_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"user": "10000000/min", "anon": "10000000/min", "token": "10000000/min"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
}
