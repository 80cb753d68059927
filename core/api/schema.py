"""OpenAPI (drf-spectacular): every operation also documents the one error shape, for the statuses it can answer.

`ApiAutoSchema` adds to each operation's responses, unless the view declared them: 400 (validation), 401, 403,
404, 409, 429 and 503 (database unavailable) — all `Error`. `paginated()`
builds the page envelope of a list view written as a plain APIView.
"""

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What went wrong, for a person.")
    extra = serializers.DictField(
        help_text="Details: `fields` (field errors), `retry_after` (seconds, on 429), ids of what conflicted.",
    )


ERROR_EXAMPLES = [
    OpenApiExample(
        "Validation error",
        value={
            "message": "Validation error",
            "extra": {"fields": {"volume": ["Ensure this value is greater than 0."]}},
        },
        status_codes=["400"],
        response_only=True,
    ),
    OpenApiExample(
        "Not found",
        value={"message": "Trading account 42 not found.", "extra": {}},
        status_codes=["404"],
        response_only=True,
    ),
    OpenApiExample(
        "Throttled",
        value={
            "message": "Request was throttled. Expected available in 12 seconds.",
            "extra": {"retry_after": 12},
        },
        status_codes=["429"],
        response_only=True,
    ),
]

_ERROR_STATUSES = ("400", "401", "403", "404", "409", "429", "503")


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in _ERROR_STATUSES:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
        return responses

    def get_examples(self) -> list[OpenApiExample]:
        return [*super().get_examples(), *ERROR_EXAMPLES]


def paginated(serializer: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The limit/offset page of `serializer` items (count, next, previous, results)."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
        },
    )


class PageParametersSerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, help_text="Rows per page.")
    offset = serializers.IntegerField(required=False, min_value=0, help_text="Rows to skip.")


class CachedJWTScheme(SimpleJWTScheme):
    """core.api.auth.CachedJWTAuthentication is simplejwt's bearer token: the same security scheme."""

    target_class = "core.api.auth.CachedJWTAuthentication"
