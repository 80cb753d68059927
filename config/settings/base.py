"""Every setting and every environment read.

DEBUG is off unless DJANGO_DEBUG=true says otherwise (`make run` and the test settings set development explicitly),
so a deploy that forgets the variable gets production behaviour, not development secrets. Production is driven by
the environment (no production.py): anything secret has no default once DEBUG is off, so a misconfigured deploy
fails at start-up.
"""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.database import configure_connections
from config.env import env

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"

if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-development-only-key-change-me")
else:
    try:
        SECRET_KEY = env("DJANGO_SECRET_KEY")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.") from exc

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_celery_beat",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "channels",
    "core",
    "accounts",
    "reconciliation",
    "guards",
    "risk",
    "rules",
    "pipeline",
    "ea",
    "dashboard",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A view outside DRF that meets a refused/lost database connection answers 503 + Retry-After (core/errors.py).
    "core.errors.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.BrowserTimezoneMiddleware",
    # Last, as django-axes requires: turns a lockout flagged during authentication into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.navigation",
            ],
        },
    },
]

# SQLite under var/ when DATABASE_URL is not set (the embedded development default); PostgreSQL in tests and production.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker, beat and the demo write concurrently in `make run`: wait for the lock instead of failing, and
    # take it when a transaction starts so two writers never deadlock upgrading read locks.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
# Workers: a persistent connection per thread; the web process (ASGI): a bounded pool (config/database.py).
DATABASES["default"] = configure_connections(
    DATABASES["default"], conn_max_age=env.int("DJANGO_CONN_MAX_AGE", default=60)
)
# Behind PgBouncer in transaction pooling (docs/DEPLOY.md): no server-side cursors (they outlive a transaction).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DATABASE_BEHIND_PGBOUNCER", default=False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every role logs in on /login/ (the admin's login page redirects nowhere else).
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Login lockout (django-axes): every authenticate() call — admin login, /login/, the JWT token endpoint — goes
# through AxesStandaloneBackend first. Failures are stored (AccessAttempt, AccessFailureLog: the audit, read-only
# in the admin); FAILURE_LIMIT failures for one username from one IP lock that pair out for COOLOFF minutes
# (username+IP, not username alone, so nobody can lock the owner out from elsewhere during an incident).
# The lockout answer is a 429 with Retry-After: the JSON error shape under /api/, a page elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_CACHE = "default"
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2", "refresh", "access"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Redis: one URL for cache, Celery broker and the channel layer unless each is given separately.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",  # Django's, reusing its redis client (core/cache.py)
        "LOCATION": env("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="mt5guard"),
    }
}
# redis-py 8 defaults socket_timeout to 5 s, the same as the layer's blocking read (channels_redis BZPOPMIN
# brpop_timeout = 5): an idle socket's read timed out in the client just as Redis answered, and daphne dropped the
# websocket. The client's read timeout must exceed the blocking read; a dead Redis is still noticed within it.
CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS", default=30.0)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.channel_layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": env("CHANNEL_LAYER_URL", default=REDIS_URL),
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS,
                    "socket_connect_timeout": 5,
                    "health_check_interval": 15,
                }
            ],
            "prefix": "mt5guard:asgi",
        },
    }
}
# Live pages: how often an open socket re-checks that its user may still see what it receives.
LIVE_ACCESS_RECHECK_SECONDS = env.float("LIVE_ACCESS_RECHECK_SECONDS", default=30.0)
# The overview's fleet summary is pushed at most once per this many seconds per socket (dashboard/consumers.py).
LIVE_SUMMARY_SECONDS = env.float("LIVE_SUMMARY_SECONDS", default=1.0)

# Celery: late acknowledgement + re-queue on worker loss, so a killed worker's task runs again; the services
# it calls are idempotent (per-account locks, unique event keys, close intents).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=4)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=90)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# The worker's consumer retries a lost broker at most this far apart (core.worker: Celery's own ladder grows to 30 s).
CELERY_WORKER_CONSUMER = "core.worker:BrokerConsumer"
BROKER_RECONNECT_START_SECONDS = env.float("BROKER_RECONNECT_START_SECONDS", default=1.0)
BROKER_RECONNECT_MAX_SECONDS = env.float("BROKER_RECONNECT_MAX_SECONDS", default=2.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.auth.CachedJWTAuthentication",  # simplejwt's, the user from the shared cache (core/readcache.py)
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
    # Throttles on the shared cache (Redis): per signed-in user, per IP for anonymous callers, and a stricter
    # scope on the token endpoints (password guessing is also locked out by django-axes).
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.UserRateThrottle",
        "core.api.throttling.AnonRateThrottle",
        "core.api.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_USER", default="1200/min"),
        "anon": env("API_THROTTLE_ANON", default="120/min"),
        "token": env("API_THROTTLE_TOKEN", default="20/min"),
    },
}

# The OpenAPI schema of /api/v1/ (`make schema` writes docs/openapi.yaml); Swagger UI and Redoc from our own static
# files (drf-spectacular-sidecar), never a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "MT5 Guard API",
    "DESCRIPTION": (
        "Accounts, positions, reconciliation and guard status, the alert ledger and manual closes. "
        "Authenticate with a JWT (`POST /api/v1/auth/token/`, then `Authorization: Bearer <access>`) or the "
        'session cookie. Every error is `{"message": ..., "extra": {...}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {},
}

# Credentials of MT5 accounts are encrypted at rest with Fernet. MT5_CREDENTIALS_KEYS is a comma-separated list of
# Fernet keys, newest first (older keys still decrypt, for rotation). In development a key is generated once under
# var/ when none is given; with DEBUG off the key is required (checked at start-up by core.crypto).
MT5_CREDENTIALS_KEYS = env.list("MT5_CREDENTIALS_KEYS", default=[])
MT5_CREDENTIALS_DEV_KEY_FILE = VAR_DIR / "credentials-dev.key"

# The MT5 gateway. Each TradingAccount names its backend (simulated | native | bridge); these are defaults.
# The simulated terminal is for development only: with DEBUG off an active account may not use it (accounts.checks,
# TradingAccount.clean, accounts.selectors.trading_account_gateway). Not read from the environment on purpose.
MT5_SIMULATED_ALLOWED = DEBUG
MT5_DEFAULT_BACKEND = env("MT5_DEFAULT_BACKEND", default="simulated" if DEBUG else "bridge")
if MT5_DEFAULT_BACKEND not in ("simulated", "native", "bridge", "ea"):
    raise ImproperlyConfigured(
        f"MT5_DEFAULT_BACKEND={MT5_DEFAULT_BACKEND!r}: expected one of simulated, native, bridge, ea."
    )
if MT5_DEFAULT_BACKEND == "simulated" and not MT5_SIMULATED_ALLOWED:
    raise ImproperlyConfigured(
        "MT5_DEFAULT_BACKEND=simulated is refused with DJANGO_DEBUG off: the simulated terminal is for development "
        "only. Use bridge (docs/DEPLOY-MT5.md) or native."
    )
MT5_BRIDGE_URL = env("MT5_BRIDGE_URL", default="http://127.0.0.1:18812")
MT5_BRIDGE_SECRET = env("MT5_BRIDGE_SECRET", default="development-bridge-secret" if DEBUG else None)
MT5_CALL_TIMEOUT_SECONDS = env.float("MT5_CALL_TIMEOUT_SECONDS", default=10.0)
# How long a close waits for the EA to fetch and answer its command before the outcome counts as unknown.
MT5_EA_COMMAND_DEADLINE_SECONDS = env.float("MT5_EA_COMMAND_DEADLINE_SECONDS", default=20.0)
MT5_CIRCUIT_FAILURE_THRESHOLD = env.int("MT5_CIRCUIT_FAILURE_THRESHOLD", default=3)
# The first open period is shorter than the sync interval (a terminal back from a short outage is found by the next
# cycle); each failed trial doubles it up to the maximum (a terminal that stays down is asked ever more rarely).
MT5_CIRCUIT_RESET_SECONDS = env.float("MT5_CIRCUIT_RESET_SECONDS", default=8.0)
MT5_CIRCUIT_MAX_RESET_SECONDS = env.float("MT5_CIRCUIT_MAX_RESET_SECONDS", default=120.0)
# A call finding the circuit a moment from letting calls through (a trial in flight, an open period ending) waits this
# long for it rather than failing: after an outage, the sync right behind a health probe's trial is not lost.
MT5_CIRCUIT_TRIAL_WAIT_SECONDS = env.float("MT5_CIRCUIT_TRIAL_WAIT_SECONDS", default=3.0)
MT5_RECONNECT_BASE_SECONDS = env.float("MT5_RECONNECT_BASE_SECONDS", default=1.0)
MT5_RECONNECT_CAP_SECONDS = env.float("MT5_RECONNECT_CAP_SECONDS", default=60.0)
# Terminal gateways (connections) a process keeps, least recently used out: any worker may sync any account.
MT5_GATEWAY_CACHE_SIZE = env.int("MT5_GATEWAY_CACHE_SIZE", default=2000)
MT5_PRODUCT_MAGIC = env.int("MT5_PRODUCT_MAGIC", default=990_001)

# How often every active account's terminal link is probed (health shown in the admin).
ACCOUNT_HEALTH_PROBE_SECONDS = env.int("ACCOUNT_HEALTH_PROBE_SECONDS", default=30)

# Reconciliation (defaults and meanings in reconciliation/conf.py). The beat interval is declared by
# setup_periodic_tasks and then editable in the admin.
RECONCILIATION_SYNC_INTERVAL_SECONDS = env.int("RECONCILIATION_SYNC_INTERVAL_SECONDS", default=10)
RECONCILIATION_MISSING_GRACE_SECONDS = env.int("RECONCILIATION_MISSING_GRACE_SECONDS", default=15)
RECONCILIATION_CLOSE_REASON_WAIT_SECONDS = env.int("RECONCILIATION_CLOSE_REASON_WAIT_SECONDS", default=30)
RECONCILIATION_LOCK_SECONDS = env.int("RECONCILIATION_LOCK_SECONDS", default=45)
RECONCILIATION_LOCK_TTL_SECONDS = env.float("RECONCILIATION_LOCK_TTL_SECONDS", default=10)
RECONCILIATION_SYNC_QUEUE = env("RECONCILIATION_SYNC_QUEUE", default="celery")
RECONCILIATION_RUN_RETENTION_HOURS = env.int("RECONCILIATION_RUN_RETENTION_HOURS", default=24)

# GET /api/v1/alerts/ waits at most this long for a new alert (long poll).
API_ALERTS_MAX_WAIT_SECONDS = env.float("API_ALERTS_MAX_WAIT_SECONDS", default=25.0)

# An account snapshot older than this is stale: pages flag it, sizing and guards refuse to act on it.
ACCOUNT_SNAPSHOT_STALE_SECONDS = env.int("ACCOUNT_SNAPSHOT_STALE_SECONDS", default=300)

# Notifications (docs/NOTIFICATIONS.md). Links in messages point at SITE_URL; the Telegram bot token comes from the
# environment only (empty: the Telegram channel is off and its notifications wait).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
ACCOUNT_PAGE_PATH = env("ACCOUNT_PAGE_PATH", default="/accounts/{account_id}/")
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_API_BASE_URL = env("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")
TELEGRAM_RATE_PER_CHAT_PER_SECOND = env.int("TELEGRAM_RATE_PER_CHAT_PER_SECOND", default=1)
TELEGRAM_RATE_TOTAL_PER_SECOND = env.int("TELEGRAM_RATE_TOTAL_PER_SECOND", default=30)
TELEGRAM_LINK_CODE_SECONDS = env.int("TELEGRAM_LINK_CODE_SECONDS", default=900)
NOTIFY_QUEUE = env("NOTIFY_QUEUE", default="notifications")
# Notification tasks run on their own queue and worker (Procfile.dev: notify), never in a guard's worker slot.
CELERY_TASK_ROUTES = {"notifications.tasks.*": {"queue": NOTIFY_QUEUE}}
NOTIFY_HTTP_TIMEOUT_SECONDS = env.float("NOTIFY_HTTP_TIMEOUT_SECONDS", default=5.0)
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=8)
NOTIFY_RETRY_BASE_SECONDS = env.float("NOTIFY_RETRY_BASE_SECONDS", default=10.0)
NOTIFY_RETRY_CAP_SECONDS = env.float("NOTIFY_RETRY_CAP_SECONDS", default=1800.0)
NOTIFY_LEASE_SECONDS = env.int("NOTIFY_LEASE_SECONDS", default=60)
NOTIFY_ACCOUNT_STALE_SECONDS = env.int("NOTIFY_ACCOUNT_STALE_SECONDS", default=300)
NOTIFY_DIGEST_HOUR_UTC = env.int("NOTIFY_DIGEST_HOUR_UTC", default=7)
# E-mail: EMAIL_URL (django-environ syntax, e.g. smtp+tls://user:pass@host:587); the console in development.
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="MT5 Guard <mt5guard@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    # httpx logs every request's URL at INFO (the Telegram Bot API URL carries the bot token); django-axes logs
    # its start-up banner at INFO in every process (commands included); failures are WARNING.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Production hardening: on by default whenever DEBUG is off (manage.py check --deploy is clean).
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
