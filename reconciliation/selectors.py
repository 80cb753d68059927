"""Reads of the reconciliation app, scoped to what the user may see (operators: every account; traders: their own)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_list_for_user
from reconciliation.models import AccountSync, BotTrade, LivePosition, ReconciliationEvent, SyncCycle


def live_position_list_for_account(*, account: TradingAccount) -> QuerySet[LivePosition]:
    """The account's open positions as the last successful sync stored them (ordered by ticket)."""
    return LivePosition.objects.filter(account=account).order_by("ticket")


def bot_trade_list_for_user(*, user: User, account_id: int | None = None) -> QuerySet[BotTrade]:
    trades = BotTrade.objects.filter(account__in=trading_account_list_for_user(user=user))
    if account_id is not None:
        trades = trades.filter(account_id=account_id)
    return trades.order_by("-created_at", "-pk")


def bot_trade_get_by_key(*, account: TradingAccount, signal_id: str, leg: int) -> BotTrade | None:
    return BotTrade.objects.filter(account=account, signal_id=signal_id.strip(), leg=leg).first()


def event_list_for_user(
    *, user: User, account_id: int | None = None, state: str | None = None
) -> QuerySet[ReconciliationEvent]:
    events = ReconciliationEvent.objects.filter(account__in=trading_account_list_for_user(user=user))
    if account_id is not None:
        events = events.filter(account_id=account_id)
    if state:
        events = events.filter(state=state)
    return events.order_by("-first_seen_at", "-pk")


def account_sync_latest(*, account: TradingAccount) -> AccountSync | None:
    return AccountSync.objects.filter(account=account).order_by("-started_at", "-pk").first()


def sync_cycle_latest() -> SyncCycle | None:
    return SyncCycle.objects.order_by("-started_at", "-pk").first()
