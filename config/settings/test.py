"""Overrides that make tests fast and deterministic. Tests run on PostgreSQL and Redis, the real services."""

import os

# The base settings' development defaults (development secrets, no HTTPS redirect), set explicitly now that
# DJANGO_DEBUG defaults to off; every value tests depend on is overridden below anyway.
os.environ.setdefault("DJANGO_DEBUG", "true")

from config.database import configure_connections
from config.env import env
from config.settings.base import *  # noqa: F403
from config.settings.base import BASE_DIR

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production-use-0123456789"  # noqa: S105
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/mt5guard")}
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_mt5guard")}
# Pooled only in a web process that asks for it (the API benchmark's daphne, the pool's own tests).
DATABASES["default"] = configure_connections(DATABASES["default"], conn_max_age=0)

# A dedicated Redis database for tests so a running development stack is never disturbed.
TEST_REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
REDIS_URL = TEST_REDIS_URL
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",  # Django's, reusing its redis client (core/cache.py)
        "LOCATION": TEST_REDIS_URL,
        "KEY_PREFIX": "test",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.channel_layer.RedisChannelLayer",  # production's (config/settings/base.py)
        "CONFIG": {
            "hosts": [{"address": TEST_REDIS_URL, "socket_timeout": 30.0, "socket_connect_timeout": 5}],
            "prefix": "test:asgi",
        },
    }
}
CELERY_BROKER_URL = TEST_REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A fixed key for tests (generated with Fernet.generate_key(); protects nothing real).
MT5_CREDENTIALS_KEYS = ["kXq2d6o3b4JQm3Zq3v6Rr0Yc1rS9a3pJb8f5n2H7w0E="]
MT5_CREDENTIALS_DEV_KEY_FILE = BASE_DIR / "var" / "unused-in-tests.key"
MT5_BRIDGE_SECRET = "test-bridge-secret"  # noqa: S105

# Throttling is tested on its own (core/tests/test_throttling.py); elsewhere it must never decide a test.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "100000/min", "anon": "100000/min", "token": "100000/min"},
}

# Tests drive simulated terminals although DEBUG is off while they run; the refusal has its own tests.
MT5_SIMULATED_ALLOWED = True
MT5_DEFAULT_BACKEND = "simulated"

# Notifications: loopback fakes set their own base URLs per test; a token so the Telegram channel is on.
TELEGRAM_BOT_TOKEN = "123456:test-token"  # noqa: S105
TELEGRAM_API_BASE_URL = "http://127.0.0.1:9"  # discard port: a test that forgets its fake server fails fast
SITE_URL = "https://guard.example.test"
