"""The EA's three endpoints (docs/EA-PROTOCOL.md). Plain Django views: the request is authenticated from the raw
body before anything parses it, so neither DRF's parsers nor sessions/CSRF take part (there is no cookie)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import ApplicationError
from ea import services
from ea.models import EaLink
from integrations.mt5.ea import protocol

LONG_POLL_MAX_SECONDS = 25.0
LONG_POLL_STEP_SECONDS = 0.5


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    response = JsonResponse({"message": message, "extra": extra}, status=status)
    if status == 429 and "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


def _authenticated(view: Callable[[HttpRequest, EaLink], HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Bad Content-Length.")
        if length > protocol.MAX_BODY_BYTES:
            return _error(413, f"The body is larger than {protocol.MAX_BODY_BYTES} bytes.")
        body = request.body
        if len(body) > protocol.MAX_BODY_BYTES:
            return _error(413, f"The body is larger than {protocol.MAX_BODY_BYTES} bytes.")
        try:
            link = services.ea_request_authenticate(
                headers=request.headers, method=request.method or "", path=request.path, body=body
            )
            return view(request, link, **kwargs)
        except ApplicationError as exc:
            return _error(exc.status_code, exc.message, **exc.extra)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return csrf_exempt(wrapper)


@require_POST
@_authenticated
def ea_push(request: HttpRequest, link: EaLink) -> HttpResponse:
    """The account's state; answers with how many commands are waiting, so the EA fetches them at once."""
    link = services.ea_push_accept(link=link, body=request.body)
    return JsonResponse(
        {
            "accepted": True,
            "server_time": services.server_now_msc(),
            "commands_pending": services.ea_commands_pending_exist(link=link),
        }
    )


@require_GET
@_authenticated
def ea_commands(request: HttpRequest, link: EaLink) -> HttpResponse:
    """Pending close commands; with ?wait=N (≤ 25 s) waits for one to be queued. Each command is handed out once."""
    try:
        wait = min(max(float(request.GET.get("wait", "0")), 0.0), LONG_POLL_MAX_SECONDS)
    except ValueError:
        return _error(400, "wait must be a number of seconds.")
    deadline = time.monotonic() + wait
    while True:
        commands = services.ea_commands_fetch(link=link)
        if commands or time.monotonic() >= deadline:
            break
        if not connection.in_atomic_block:
            connection.close()  # wait without holding one of the web process's pooled connections
        time.sleep(LONG_POLL_STEP_SECONDS)
    return JsonResponse(
        {
            "server_time": services.server_now_msc(),
            "commands": [services.command_payload(c) for c in commands],
        }
    )


@require_POST
@_authenticated
def ea_command_result(request: HttpRequest, link: EaLink, command_id: int) -> HttpResponse:
    command = services.ea_command_result_record(link=link, command_id=command_id, body=request.body)
    return JsonResponse({"id": command.pk, "state": command.state, "late": command.answered_late})
