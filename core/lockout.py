"""The answer to a locked-out login (django-axes calls `lockout_response`; the JWT view raises `login_locked_out`).

Under /api/ it is the one JSON error shape, elsewhere (admin, /login/) a short page; both are 429 with Retry-After
(the cool-off restarts with every failed attempt during a lockout, so the whole cool-off is the honest wait)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework.exceptions import Throttled

LOCKOUT_MESSAGE = "Too many failed login attempts. Try again later."


def lockout_retry_after_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def login_locked_out() -> Throttled:
    """The DRF exception for a locked-out API login (429 + Retry-After through the API error handler)."""
    return Throttled(wait=lockout_retry_after_seconds(), detail=LOCKOUT_MESSAGE)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    retry_after = lockout_retry_after_seconds()
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"message": LOCKOUT_MESSAGE, "extra": {"retry_after": retry_after}}, status=429
        )
    else:
        html = render_to_string(
            "registration/locked_out.html",
            {"message": LOCKOUT_MESSAGE, "retry_after_minutes": max(1, retry_after // 60)},
            request=request,
        )
        response = HttpResponse(html, status=429)
    response["Retry-After"] = str(retry_after)
    return response
