"""Limit/offset pagination that refuses bad numbers (`limit=-5`, `offset=abc` are a 400, not silently ignored)."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


def _non_negative_int(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"Must be a whole number ≥ {minimum}."]}) from None
    if value < minimum:
        raise ValidationError({name: [f"Must be a whole number ≥ {minimum}."]})
    return value


class StrictLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        limit = _non_negative_int(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        if limit > self.max_limit:
            raise ValidationError({self.limit_query_param: [f"At most {self.max_limit}."]})
        return limit

    def get_offset(self, request: Request) -> int:
        return _non_negative_int(request, self.offset_query_param, minimum=0) or 0
