"""A database that refuses or drops connections is a 503 with Retry-After, never a 500.

Where it can happen and who answers:
- in a DRF view: the API exception handler (core/api/exception_handler.py), with `database_unavailable_response`;
- in any other view (pages, the EA endpoints, health): `DatabaseUnavailableMiddleware.process_exception`;
- anywhere else in the request (a middleware, a signal): Django's last resort, `handler500` (`server_error`), which
  looks at the exception being handled.
Under /api/ the answer is the one JSON error shape, elsewhere a short page.
"""

import logging
import sys
from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable; retry shortly."


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Django's OperationalError: refused or lost connections, a pool with no free connection in time
    (psycopg_pool.PoolTimeout, wrapped), a cancelled statement."""
    return isinstance(exc, OperationalError)


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    logger.error("database unavailable answering %s %s: %s", request.method, request.path, exc)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"message": DATABASE_UNAVAILABLE_MESSAGE, "extra": {"retry_after": DATABASE_RETRY_AFTER_SECONDS}},
            status=503,
        )
    else:
        html = loader.render_to_string(
            "503.html", {"message": DATABASE_UNAVAILABLE_MESSAGE, "retry_after": DATABASE_RETRY_AFTER_SECONDS}
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Views outside DRF: an OperationalError they raise becomes the 503 above."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            return database_unavailable_response(request, exception)
        return None


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: Django calls it while handling the uncaught exception, so sys.exc_info() names it."""
    exc = sys.exc_info()[1]
    if is_database_unavailable(exc):
        assert exc is not None  # noqa: S101 (narrowing for the type checker)
        return database_unavailable_response(request, exc)
    if request.path.startswith("/api/"):
        return JsonResponse({"message": "Internal server error.", "extra": {}}, status=500)
    template = loader.get_template("500.html")
    return HttpResponseServerError(template.render())
