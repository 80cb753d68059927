"""HTML pages: log in/out, the overview, the account page. Thin: selectors for reads, services for writes."""

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_get_for_user
from core.exceptions import ApplicationError, NotFoundError, PermissionDeniedError
from dashboard.forms import GuardResetForm, ManualCloseForm
from dashboard.selectors.account import (
    CHART_WINDOWS,
    account_bot_trades_recent,
    account_guard_panel,
    account_positions,
    account_syncs_recent,
    equity_chart,
)
from dashboard.selectors.alerts import BANNER_LIMIT, guard_banner_accounts
from dashboard.selectors.overview import OverviewFilters, fleet_summary, overview_accounts, overview_filter
from ea.selectors import ea_status_for_account
from guards.selectors import account_close_allowed
from guards.services import guard_reset
from guards.services.manual_close import manual_close_request, request_fingerprint_for
from guards.services.reset import OpenPositionsNotConfirmedError
from reconciliation.symbols import symbol_digits_cached
from rules.views import account_rules_card

OVERVIEW_PAGE_SIZE = 50


class LoginPage(auth_views.LoginView):
    """django.contrib.auth's login (authenticate(request=...)), so the lockout backend sees every attempt."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True


class LogoutPage(auth_views.LogoutView):
    pass


def account_for(request: HttpRequest, account_id: int) -> TradingAccount:
    """The account if the user may see it; another trader's account is a 404, like a missing one."""
    try:
        return trading_account_get_for_user(user=request.user, account_id=account_id)  # type: ignore[arg-type]
    except NotFoundError as exc:
        raise Http404(exc.message) from None


@require_GET
@login_required
def overview_page(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    filters = OverviewFilters.from_query(request.GET)
    accounts = overview_filter(accounts=overview_accounts(user=user), filters=filters)
    page = Paginator(accounts, OVERVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "query": filters.as_query(),
        "summary": fleet_summary(user=user),
        "is_operator": user.is_operator,
    }
    template = "dashboard/overview.html#overview-table" if request.htmx else "dashboard/overview.html"
    return render(request, template, context)


@require_GET
@login_required
def account_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_for(request, account_id)
    user: User = request.user  # type: ignore[assignment]
    context = account_context(user=user, account=account) | account_rules_card(user=user, account=account)
    return render(request, "dashboard/account.html", context)


def account_context(*, user: User, account: TradingAccount, **extra: Any) -> dict[str, Any]:
    positions = account_positions(account=account)
    return {
        "account": account,
        "positions": positions,
        "digits": symbol_digits_cached(
            server=account.server, names=[row.position.symbol for row in positions]
        ),
        "may_close": account_close_allowed(user=user, account=account),
        "guard": account_guard_panel(account=account),
        "syncs": account_syncs_recent(account=account),
        "bot_trades": account_bot_trades_recent(account=account),
        "ea": ea_status_for_account(account=account),  # None (and no query) unless the account is on `ea`
        "chart_windows": list(CHART_WINDOWS),
        "may_reset": user.is_operator,
        "reset_form": extra.pop("reset_form", None) or GuardResetForm(),
        "close_key": uuid.uuid4().hex,
        **extra,
    }


@require_GET
@login_required
def account_positions_fragment(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_for(request, account_id)
    user: User = request.user  # type: ignore[assignment]
    # The page's resync (hx-swap="none"): each region carries hx-swap-oob and replaces itself, as a live push does.
    return render(
        request, "dashboard/account.html#account-live", account_context(user=user, account=account, oob=True)
    )


@require_GET
@login_required
def account_chart(request: HttpRequest, account_id: int) -> JsonResponse:
    account = account_for(request, account_id)
    return JsonResponse(equity_chart(account=account, window=request.GET.get("window", "1d")))


@require_POST
@login_required
def account_guard_reset(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_for(request, account_id)
    user: User = request.user  # type: ignore[assignment]
    if not user.is_operator:
        raise PermissionDenied("Only owners and support staff may reset a guard.")
    form = GuardResetForm(request.POST)
    if form.is_valid():
        try:
            guard_reset(
                account=account,
                actor=user,
                reason=form.cleaned_data["reason"],
                confirm_open_positions=form.cleaned_data["confirm_open_positions"],
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from None
        except OpenPositionsNotConfirmedError as exc:
            form.add_error("confirm_open_positions", exc.message)
        except (ApplicationError, ValidationError) as exc:
            form.add_error(None, getattr(exc, "message", None) or "; ".join(exc.messages))  # type: ignore[union-attr]
        else:
            url = reverse("dashboard:account_page", args=[account.pk])
            if request.htmx:
                response = HttpResponseClientRedirect(url)
                return trigger_client_event(response, "toast", {"message": "Guard reset."})
            return redirect(url)
    account.refresh_from_db()
    context = account_context(user=user, account=account, reset_form=form)
    template = "dashboard/account.html#guard-panel" if request.htmx else "dashboard/account.html"
    return render(request, template, context)


@require_POST
@login_required
def position_close(request: HttpRequest, account_id: int, ticket: int) -> HttpResponse:
    return _close(request, account_id=account_id, ticket=ticket)


@require_POST
@login_required
def positions_close_all(request: HttpRequest, account_id: int) -> HttpResponse:
    return _close(request, account_id=account_id, ticket=None)


CLOSE_NOT_ALLOWED = (
    "You may not close positions of this account: owners and support may; a trader only on their own accounts, "
    "and only while the owner allows it."
)


def _close(request: HttpRequest, *, account_id: int, ticket: int | None) -> HttpResponse:
    """One close request per idempotency key through the one manual-close service; the orders go out from a
    worker and their outcome (close intents, alerts) reaches the page live."""
    account = account_for(request, account_id)
    user: User = request.user  # type: ignore[assignment]
    if not account_close_allowed(user=user, account=account):
        raise PermissionDenied(CLOSE_NOT_ALLOWED)
    form = ManualCloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["idempotency_key"][0])
    else:
        try:
            close = manual_close_request(
                account=account,
                user=user,
                idempotency_key=form.cleaned_data["idempotency_key"],
                ticket=ticket,
                request_fingerprint=request_fingerprint_for(account_id=account.pk, ticket=ticket, body={}),
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from None
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            count = len((close.response or {}).get("intents", []))
            what = f"position #{ticket}" if ticket is not None else f"{count} position(s)"
            if getattr(close, "replayed", False):
                messages.info(request, f"The close of {what} was already requested; it is not sent twice.")
            else:
                messages.success(
                    request, f"Close of {what} requested; its outcome appears under Close intents."
                )
    return redirect(reverse("dashboard:account_page", args=[account.pk]) + "#account-positions")


@require_GET
@login_required
def guard_banner_fragment(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    accounts = list(guard_banner_accounts(user=user)[: BANNER_LIMIT + 1])
    return render(request, "dashboard/partials/_guard_banner.html", {"banner_accounts": accounts})


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 403 page says why (the exception's message) and where to go instead."""
    reason = str(exception) if exception and str(exception) else "Your role does not allow this action."
    return render(request, "403.html", {"reason": reason}, status=403)
