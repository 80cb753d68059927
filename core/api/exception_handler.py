"""One error shape for every API response: {"message": str, "extra": {...}}, field errors under extra.fields,
the wait of a 429 under extra.retry_after (and in the Retry-After header)."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from core.errors import DATABASE_RETRY_AFTER_SECONDS, DATABASE_UNAVAILABLE_MESSAGE, is_database_unavailable
from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if is_database_unavailable(exc):
        # The database is down or out of connections: a 503 the client may retry, not a 500.
        request = context.get("request")
        retry_after = DATABASE_RETRY_AFTER_SECONDS
        path = request.path if request is not None else "?"
        logger.error("database unavailable answering %s: %s", path, exc)
        response = Response(
            {"message": DATABASE_UNAVAILABLE_MESSAGE, "extra": {"retry_after": retry_after}}, status=503
        )
        response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"message": "Validation error", "extra": {"fields": response.data}}
    elif isinstance(exc, exceptions.Throttled):
        # Retry-After is set by DRF; the body says the same for clients that do not read headers.
        response.data = {"message": str(exc.detail), "extra": {"retry_after": exc.wait}}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"message": str(detail), "extra": {}}
    return response
