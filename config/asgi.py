import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
# The web process pools its PostgreSQL connections (bounded; config/database.py): every request runs on its own
# thread under ASGI, and persistent per-thread connections would grow with the number of concurrent requests.
# Only for the settings of this process: processes it starts (or a test process that imported this module) keep
# their own default, so a Celery worker never inherits a pool.
_pool_defaulted = "DJANGO_DB_POOL" not in os.environ
os.environ.setdefault("DJANGO_DB_POOL", "true")
# Django must be set up before anything that imports models (consumers, routing).
django_asgi_app = get_asgi_application()
if _pool_defaulted:
    del os.environ["DJANGO_DB_POOL"]

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.routing import websocket_urlpatterns as account_websockets  # noqa: E402
from core.api.fastread import CachedReadsFirst  # noqa: E402
from core.process import loaded_objects_freeze  # noqa: E402
from core.websocket_server import skip_autobahn_debug_formatting  # noqa: E402
from dashboard.routing import websocket_urlpatterns as page_websockets  # noqa: E402

skip_autobahn_debug_formatting()

application = ProtocolTypeRouter(
    {
        # A cached API read (status, positions, guards) is answered on the event loop when it can be; everything
        # else, and every miss, is Django's (core/api/fastread.py).
        "http": CachedReadsFirst(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(account_websockets + page_websockets))
        ),
    }
)

loaded_objects_freeze()
