"""The notifications page: my channels, minimum severities, time zone, Telegram link, and the deliveries I may
see with their state and attempts. Function views; HTMX requests get the fragment back."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import available_time_zones
from core.api.auth import authenticated_user
from notifications.models import USER_CHANNELS, Severity
from notifications.selectors import notification_list_for_user, preferences_for_user
from notifications.services import (
    notification_preference_update,
    telegram_link_code_create,
    user_time_zone_update,
)

PAGE = "notifications/page.html"
RECENT = 50


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    user = authenticated_user(request)
    return {
        "prefs": preferences_for_user(user=user),
        "time_zone": user.time_zone,
        "time_zones": sorted(available_time_zones()),
        "severities": Severity.choices,
        "telegram_chat": getattr(user, "telegram_chat", None),
        "deliveries": notification_list_for_user(user=user)[:RECENT],
        "is_operator": user.is_operator,
        **extra,
    }


@login_required
@require_GET
def notifications_page(request: HttpRequest) -> HttpResponse:
    return render(request, PAGE, _context(request))


@login_required
@require_GET
def notifications_deliveries(request: HttpRequest) -> HttpResponse:
    return render(request, f"{PAGE}#deliveries", _context(request))


@login_required
@require_POST
def notifications_preferences_save(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    errors: list[str] = []
    try:
        with transaction.atomic():
            user_time_zone_update(user=user, time_zone=request.POST.get("time_zone", ""))
            for channel in USER_CHANNELS:
                notification_preference_update(
                    user=user,
                    channel=channel,
                    enabled=request.POST.get(f"{channel}_enabled") == "on",
                    min_severity=request.POST.get(f"{channel}_min_severity", ""),
                )
    except ValidationError as exc:
        errors = exc.messages
        user.refresh_from_db()
    template = f"{PAGE}#preferences" if request.htmx else PAGE  # type: ignore[attr-defined]
    return render(request, template, _context(request, errors=errors, saved=not errors))


@login_required
@require_POST
def notifications_telegram_code(request: HttpRequest) -> HttpResponse:
    link = telegram_link_code_create(user=authenticated_user(request))
    template = f"{PAGE}#telegram" if request.htmx else PAGE  # type: ignore[attr-defined]
    return render(request, template, _context(request, link=link))
