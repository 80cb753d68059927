"""One error shape for every API response: {"message": str, "extra": {...}}, field errors under extra.fields,
the wait of a 429 under extra.retry_after (and in the Retry-After header)."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


DATABASE_RETRY_AFTER_SECONDS = 5


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, OperationalError):
        # The database is down or out of connections: a 503 the client may retry, not a 500.
        logger.error(
            "database unavailable answering %s: %s",
            context.get("request").path if context.get("request") else "?",
            exc,
        )
        response = Response(
            {
                "message": "The database is unavailable; retry shortly.",
                "extra": {"retry_after": DATABASE_RETRY_AFTER_SECONDS},
            },
            status=503,
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
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
