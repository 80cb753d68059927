"""Reads of the reconciliation app, scoped to what the user may see (operators: every account; traders: their own)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_get_for_user, trading_account_list_for_user
from core.exceptions import NotFoundError, PermissionDeniedError
from reconciliation.models import AccountSync, BotTrade, LivePosition, ReconciliationEvent, SyncCycle

WRITE_ANY_ACCOUNT_PERMISSION = "reconciliation.write_any_account"


def live_position_list_for_account(*, account: TradingAccount) -> QuerySet[LivePosition]:
    """The account's open positions as the last successful sync stored them (ordered by ticket)."""
    return LivePosition.objects.filter(account=account).order_by("ticket")


def bot_trade_list_for_account(*, account: TradingAccount, status: str | None = None) -> QuerySet[BotTrade]:
    trades = BotTrade.objects.filter(account=account)
    if status:
        trades = trades.filter(status=status)
    return trades.order_by("-created_at", "-pk")


def bot_trade_account_get_for_writing(*, user: User, account_id: int) -> TradingAccount:
    """The account whose bot trades `user` may write: holders of reconciliation.write_any_account (owners, the
    bot's API user) any account, traders their own. Another trader's account is a 404 like a missing one; an
    account the user may only read (support staff) is a 403."""
    if user.has_perm(WRITE_ANY_ACCOUNT_PERMISSION):
        try:
            return TradingAccount.objects.get(pk=account_id)
        except (TradingAccount.DoesNotExist, ValueError, TypeError):
            raise NotFoundError(f"Trading account {account_id} not found.") from None
    account = trading_account_get_for_user(user=user, account_id=account_id)
    if account.owner_id != user.pk:
        raise PermissionDeniedError("You may read this account's bot trades but not write them.")
    return account


def bot_trade_get_by_key(*, account: TradingAccount, signal_id: str, leg: int) -> BotTrade:
    trade = BotTrade.objects.filter(account=account, signal_id=signal_id.strip(), leg=leg).first()
    if trade is None:
        raise NotFoundError(f"No bot trade {signal_id}#{leg} on account {account.pk}.")
    return trade


def event_get_for_user(*, user: User, event_id: int) -> ReconciliationEvent:
    try:
        return event_list_for_user(user=user).get(pk=event_id)
    except (ReconciliationEvent.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(f"Event {event_id} not found.") from None


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
