"""Rendering of the partials the live socket pushes. Synchronous (ORM + templates); the consumer runs them in a
thread. The same templates render the full pages, the htmx fragments and these pushes."""

from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from accounts.selectors import trading_account_list_for_user
from dashboard.middleware import zone_from_name

VIEWS = ("page", "overview", "account", "divergences")


@dataclass(frozen=True)
class LiveView:
    """What one open page shows: which partials it wants pushed."""

    kind: str
    account_id: int | None = None

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> "LiveView | None":
        kind = (query.get("view") or ["page"])[0]
        if kind not in VIEWS:
            return None
        if kind != "account":
            return cls(kind=kind)
        try:
            return cls(kind=kind, account_id=int((query.get("account") or [""])[0]))
        except ValueError:
            return None


def user_may_see_account(*, user: User, account_id: int) -> bool:
    return trading_account_list_for_user(user=user).filter(pk=account_id).exists()


def _render(template: str, context: dict[str, Any], *, tz: str | None) -> str:
    zone = zone_from_name(tz)
    if zone is not None:
        timezone.activate(zone)
    try:
        return render_to_string(template, context)
    finally:
        timezone.deactivate()


def render_banner(*, user: User, tz: str | None) -> str:
    from dashboard.selectors.alerts import BANNER_LIMIT, guard_banner_accounts

    accounts = list(guard_banner_accounts(user=user)[: BANNER_LIMIT + 1])
    return _render("dashboard/partials/_guard_banner.html", {"banner_accounts": accounts}, tz=tz)


def render_overview_row(*, user: User, account_id: int, tz: str | None) -> str:
    from dashboard.selectors.overview import overview_row_get

    account = overview_row_get(user=user, account_id=account_id)
    if account is None:
        return ""
    return _render("dashboard/partials/_overview_row.html", {"account": account}, tz=tz)


def render_fleet_summary(*, user: User) -> str:
    """The overview's summary cards (counts and totals only: no time in it, so no time zone)."""
    from dashboard.selectors.overview import fleet_summary

    return _render("dashboard/overview.html#fleet-summary", {"summary": fleet_summary(user=user)}, tz=None)


def render_account_live(*, user: User, account_id: int, tz: str | None) -> str:
    from dashboard.views import account_context

    account = trading_account_list_for_user(user=user).filter(pk=account_id).first()
    if account is None:
        return ""
    context = account_context(user=user, account=account, oob=True)
    return _render("dashboard/account.html#account-live", context, tz=tz)


def render_divergence_row(*, user: User, event_id: int, new: bool, tz: str | None) -> str:
    from reconciliation.views import divergence_row_context

    context = divergence_row_context(user=user, event_id=event_id)
    if context is None:
        return ""
    html = _render("reconciliation/partials/_divergence_row.html", context, tz=tz)
    if new:
        # A new condition goes on top of the inspector's table (an out-of-band insert, not a replacement).
        return f'<table hx-swap-oob="afterend:#divergence-top">{html}</table>'
    return html
