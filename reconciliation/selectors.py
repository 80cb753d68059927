"""Reads of the reconciliation app, scoped to what the user may see (operators: every account; traders: their own)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_get_for_user, trading_account_list_for_user
from core.exceptions import NotFoundError, PermissionDeniedError
from reconciliation.models import (
    AccountSync,
    BotTrade,
    EventKind,
    EventState,
    LivePosition,
    ReconciliationEvent,
    SyncCycle,
)

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


def bot_trade_account_get_for_reading(*, user: User, account_id: int) -> TradingAccount:
    """The account whose bot trades `user` may read: whoever sees the account (support included), and the
    holders of reconciliation.write_any_account (the bot) any account."""
    if user.has_perm(WRITE_ANY_ACCOUNT_PERMISSION):
        try:
            return TradingAccount.objects.get(pk=account_id)
        except (TradingAccount.DoesNotExist, ValueError, TypeError):
            raise NotFoundError(f"Trading account {account_id} not found.") from None
    return trading_account_get_for_user(user=user, account_id=account_id)


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
    *,
    user: User,
    account_id: int | None = None,
    state: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
) -> QuerySet[ReconciliationEvent]:
    """Events of the accounts the user sees, newest first. `account_id` of an account the user may not see is a
    NotFoundError (as the account's own routes answer), not an empty list. `since`: seen at or after."""
    if account_id is not None:
        events = ReconciliationEvent.objects.filter(
            account=trading_account_get_for_user(user=user, account_id=account_id)
        )
    else:
        events = ReconciliationEvent.objects.filter(account__in=trading_account_list_for_user(user=user))
    if state:
        events = events.filter(state=state)
    if kind:
        events = events.filter(kind=kind)
    if since is not None:
        events = events.filter(last_seen_at__gte=since)
    return events.order_by("-first_seen_at", "-pk")


def account_sync_latest(*, account: TradingAccount) -> AccountSync | None:
    return AccountSync.objects.filter(account=account).order_by("-started_at", "-pk").first()


def sync_cycle_latest() -> SyncCycle | None:
    return SyncCycle.objects.order_by("-started_at", "-pk").first()


RECENT_EVENTS = 10
DIVERGENCE_KINDS = [
    k for k in EventKind.values if k not in (EventKind.UNMATCHED_POSITION, EventKind.MISSING_POSITION)
]


def account_positions_read(*, account: TradingAccount) -> dict[str, Any]:
    """Open positions as the last sync stored them, each with its matched bot trade, match method and open
    divergence events, plus totals (floating P/L, and as a percent of the latest balance)."""
    positions = list(
        LivePosition.objects.filter(account=account).select_related("bot_trade").order_by("ticket")
    )
    divergences: dict[int, list[ReconciliationEvent]] = {}
    for event in (
        ReconciliationEvent.objects.filter(account=account, ticket__isnull=False, kind__in=DIVERGENCE_KINDS)
        .filter(gone_at__isnull=True)
        .exclude(state=EventState.RESOLVED)
        .order_by("pk")
    ):
        divergences.setdefault(event.ticket, []).append(event)
    floating = sum((p.profit + p.swap for p in positions), Decimal("0"))
    snapshot = account.latest_snapshot
    balance = snapshot.balance if snapshot is not None else None
    percent = (floating / balance * 100).quantize(Decimal("0.0001")) if balance else None
    last_ok = AccountSync.objects.filter(account=account, ok=True).order_by("-started_at", "-pk").first()
    return {
        "account": account.pk,
        "synced_at": last_ok.finished_at if last_ok else None,
        "totals": {
            "count": len(positions),
            "floating_profit": floating,
            "floating_profit_percent_of_balance": percent,
            "balance": balance,
            "currency": snapshot.currency if snapshot is not None else None,
        },
        "positions": positions,
        "divergences": divergences,
    }


def account_reconciliation_status(*, account: TradingAccount) -> dict[str, Any]:
    """The last sync (time, duration, ok or error), counts of matched / unmatched / missing positions (from the
    last successful sync) and open divergences, and the most recent events."""
    last = account_sync_latest(account=account)
    last_ok = (
        last
        if last is not None and last.ok
        else AccountSync.objects.filter(account=account, ok=True).order_by("-started_at", "-pk").first()
    )
    open_divergences = (
        ReconciliationEvent.objects.filter(account=account, kind__in=DIVERGENCE_KINDS, gone_at__isnull=True)
        .exclude(state=EventState.RESOLVED)
        .count()
    )
    recent = list(
        ReconciliationEvent.objects.filter(account=account)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("-last_seen_at", "-pk")[:RECENT_EVENTS]
    )
    return {
        "account": account.pk,
        "last_sync": last,
        "counts": {
            "matched": last_ok.matched if last_ok else 0,
            "unmatched": last_ok.unmatched if last_ok else 0,
            "missing": last_ok.missing if last_ok else 0,
            "open_divergences": open_divergences,
        },
        "recent_events": recent,
    }


EVENT_AGES = {"1h": 3600, "24h": 86_400, "7d": 604_800}


def event_list_filtered(
    *,
    user: User,
    kind: str = "",
    state: str = "",
    account_id: int | None = None,
    symbol: str = "",
    older_than: str = "",
    newer_than: str = "",
) -> QuerySet[ReconciliationEvent]:
    """The divergence inspector's list: the user's events filtered by kind, state ("active" = not resolved),
    account, symbol and age, newest first, with what a row shows joined."""
    from datetime import timedelta

    from django.utils import timezone

    from reconciliation.models import EventState

    events = event_list_for_user(user=user, account_id=account_id).select_related(
        "account", "bot_trade", "acknowledged_by", "resolved_by"
    )
    if kind:
        events = events.filter(kind=kind)
    if state == "active":
        events = events.exclude(state=EventState.RESOLVED)
    elif state:
        events = events.filter(state=state)
    if symbol:
        events = events.filter(symbol__iexact=symbol.strip())
    now = timezone.now()
    if older_than in EVENT_AGES:
        events = events.filter(first_seen_at__lte=now - timedelta(seconds=EVENT_AGES[older_than]))
    if newer_than in EVENT_AGES:
        events = events.filter(first_seen_at__gte=now - timedelta(seconds=EVENT_AGES[newer_than]))
    return events


def event_live_position(*, event: ReconciliationEvent) -> LivePosition | None:
    """The live position the event names, while it is open."""
    if event.ticket is None:
        return None
    return LivePosition.objects.filter(account_id=event.account_id, ticket=event.ticket).first()


def event_comparison(*, event: ReconciliationEvent, position: LivePosition | None) -> list[dict[str, object]]:
    """The bot trade beside the live position, field by field: what differs, and by how much (pips for prices
    where the matcher reported them or the symbol's digits are known, percent for the volume)."""
    from decimal import Decimal

    from reconciliation.symbols import symbol_digits_cached

    trade = event.bot_trade
    if trade is None and position is None:
        return []
    digits = None
    if position is not None:
        digits = symbol_digits_cached(server=event.account.server, names=[position.symbol]).get(
            position.symbol
        )

    def price_diff(expected: Decimal | None, actual: Decimal | None) -> str:
        if expected is None or actual is None or not expected or not actual:
            return ""
        diff = actual - expected
        if digits is not None:
            points = diff / Decimal(1).scaleb(-digits)
            return f"{points:+.0f} points"
        return f"{diff:+f}"

    rows: list[dict[str, object]] = []

    def add(
        label: str, expected: object, actual: object, difference: str = "", *, kind: str = "text"
    ) -> None:
        differs = trade is not None and position is not None and expected != actual
        rows.append(
            {
                "field": label,
                "expected": expected,
                "actual": actual,
                "differs": differs,
                "difference": difference,
                "kind": kind,
                "digits": digits,
            }
        )

    add("Symbol", trade.symbol if trade else None, position.canonical_symbol if position else None)
    add("Side", trade.side if trade else None, position.side if position else None)
    volume_diff = ""
    if trade and position and trade.volume:
        volume_diff = f"{(position.volume - trade.volume) / trade.volume * 100:+.1f} %"
    add(
        "Volume",
        trade.volume if trade else None,
        position.volume if position else None,
        volume_diff,
        kind="volume",
    )
    entry_diff = ""
    if event.kind == "entry_slippage" and "pips" in (event.detail or {}):
        entry_diff = f"{event.detail['pips']} pips"
    elif trade and position:
        entry_diff = price_diff(trade.entry_price, position.price_open)
    add(
        "Entry",
        trade.entry_price if trade else None,
        position.price_open if position else None,
        entry_diff,
        kind="price",
    )
    add(
        "SL",
        trade.sl if trade else None,
        position.sl if position else None,
        price_diff(trade.sl, position.sl) if trade and position else "",
        kind="price",
    )
    add(
        "TP",
        trade.tp if trade else None,
        position.tp if position else None,
        price_diff(trade.tp, position.tp) if trade and position else "",
        kind="price",
    )
    return rows
