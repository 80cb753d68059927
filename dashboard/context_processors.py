"""What every page's frame needs: the navigation (apps add an entry to NAV_ITEMS) and the guard banner."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

# (url name, label, who sees it: "all" or "operators"). Keep it short; a later page (e.g. notification
# preferences) appends its own entry here.
NAV_ITEMS: list[tuple[str, str, str]] = [
    ("dashboard:overview_page", "Overview", "all"),
    ("reconciliation:divergences_page", "Divergences", "all"),
    ("risk:risk_page", "Risk", "all"),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def items() -> list[dict[str, Any]]:
        operator = user.is_operator
        return [
            {"url": reverse(name), "label": label, "active": request.path == reverse(name)}
            for name, label, who in NAV_ITEMS
            if who == "all" or operator
        ]

    def banner() -> list[Any]:
        from dashboard.selectors.alerts import BANNER_LIMIT, guard_banner_accounts

        return list(guard_banner_accounts(user=user)[: BANNER_LIMIT + 1])

    return {"nav_items": SimpleLazyObject(items), "banner_accounts": SimpleLazyObject(banner)}
