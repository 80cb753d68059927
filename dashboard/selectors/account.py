"""Reads of the account page: live positions with their matches and divergence badges, the guard panel, recent
syncs, bot trades, and the equity chart downsampled in the database."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount
from guards.headroom import PermittedLoss, permitted_loss_binding_from_rules
from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState
from guards.selectors import EffectiveGuardSettings, guard_settings_for_account, guard_state_get
from reconciliation.models import AccountSync, EventState, LivePosition, ReconciliationEvent
from reconciliation.selectors import bot_trade_list_for_account
from rules.selectors import account_rules_days, account_rules_summary

CHART_WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
CHART_MAX_POINTS = 480


@dataclass
class PositionRow:
    position: LivePosition
    divergences: list[ReconciliationEvent] = field(default_factory=list)


def account_positions(*, account: TradingAccount) -> list[PositionRow]:
    """Open positions with their bot trade and the unresolved divergences that name their ticket (two queries)."""
    positions = list(
        LivePosition.objects.filter(account=account).select_related("bot_trade").order_by("ticket")
    )
    by_ticket: dict[int, list[ReconciliationEvent]] = defaultdict(list)
    events = ReconciliationEvent.objects.filter(
        account=account, gone_at__isnull=True, ticket__in=[p.ticket for p in positions]
    ).exclude(state=EventState.RESOLVED)
    for event in events:
        if event.ticket is not None:
            by_ticket[event.ticket].append(event)
    return [PositionRow(position=p, divergences=by_ticket.get(p.ticket, [])) for p in positions]


@dataclass(frozen=True)
class GuardPanel:
    state: GuardState | None
    settings: EffectiveGuardSettings
    alerts: list[GuardAlert]
    intents: list[CloseIntent]
    daily_headroom: Decimal | None
    drawdown_headroom: Decimal | None
    day_resets_at: datetime | None
    rules: dict[str, Any] | None = None  # the account's rule set: headroom and objectives (rules.selectors)
    rules_days: list[dict[str, Any]] = field(default_factory=list)
    # The binding (smaller) permitted loss today and overall, naming its source (guards.headroom): the top cards.
    binding: PermittedLoss | None = None


def account_guard_panel(*, account: TradingAccount) -> GuardPanel:
    from dashboard.selectors.overview import broker_day_resets_at

    state = guard_state_get(account=account)
    cfg = guard_settings_for_account(account=account)
    rules = account_rules_summary(account=account)
    snapshot = account.latest_snapshot
    daily = drawdown = None
    if state is not None and snapshot is not None:
        if state.day_anchor is not None and cfg.daily_loss_critical_percent is not None:
            daily = snapshot.equity - state.day_anchor * (1 - cfg.daily_loss_critical_percent / 100)
        if state.peak_equity is not None:
            drawdown = snapshot.equity - state.peak_equity * (1 - cfg.drawdown_critical_percent / 100)
    day_resets_at = broker_day_resets_at(account=account)
    binding = permitted_loss_binding_from_rules(
        guard_today=daily, guard_total=drawdown, guard_resets_at=day_resets_at, rules=rules
    )
    return GuardPanel(
        state=state,
        settings=cfg,
        alerts=list(
            GuardAlert.objects.filter(account=account)
            .select_related("actor")
            .order_by("-created_at", "-pk")[:30]
        ),
        intents=list(CloseIntent.objects.filter(account=account).order_by("-created_at", "-pk")[:20]),
        daily_headroom=daily.quantize(Decimal("0.01")) if daily is not None else None,
        drawdown_headroom=drawdown.quantize(Decimal("0.01")) if drawdown is not None else None,
        day_resets_at=day_resets_at,
        rules=rules,
        rules_days=account_rules_days(account=account) if rules is not None else [],
        binding=binding,
    )


def account_syncs_recent(*, account: TradingAccount, limit: int = 15) -> QuerySet[AccountSync]:
    return AccountSync.objects.filter(account=account).order_by("-started_at", "-pk")[:limit]


def account_bot_trades_recent(*, account: TradingAccount, limit: int = 30) -> Any:
    return bot_trade_list_for_account(account=account)[:limit]


def equity_chart(*, account: TradingAccount, window: str, now: datetime | None = None) -> dict[str, Any]:
    """The equity over the window in at most CHART_MAX_POINTS buckets (the lowest and highest equity of each bucket,
    so a spike survives downsampling), the running peak, the warning/critical lines under it, and liquidations.

    Times are epoch seconds (UTC) for the chart library; money is a string (Decimal kept exact)."""
    now = now or timezone.now()
    span = CHART_WINDOWS.get(window, CHART_WINDOWS["1d"])
    since = now - span
    bucket_seconds = max(int(span.total_seconds() // CHART_MAX_POINTS), 1)
    rows = _equity_buckets(account_id=account.pk, since=since, bucket_seconds=bucket_seconds)
    cfg = guard_settings_for_account(account=account)
    state = guard_state_get(account=account)
    # The peak before the window is the stored high-water mark when it is older than the window.
    peak: Decimal | None = None
    if (
        state is not None
        and state.peak_equity is not None
        and state.peak_at is not None
        and state.peak_at < since
    ):
        peak = state.peak_equity
    times, lows, highs, peaks, warnings, criticals = [], [], [], [], [], []
    for at, low, high in rows:
        peak = high if peak is None or high > peak else peak
        times.append(at)
        lows.append(str(low))
        highs.append(str(high))
        peaks.append(str(peak))
        warnings.append(str((peak * (1 - cfg.drawdown_warning_percent / 100)).quantize(Decimal("0.01"))))
        criticals.append(str((peak * (1 - cfg.drawdown_critical_percent / 100)).quantize(Decimal("0.01"))))
    liquidations = [
        int(at.timestamp())
        for at in GuardAlert.objects.filter(
            account=account, kind=AlertKind.LIQUIDATION_STARTED, created_at__gte=since
        ).values_list("created_at", flat=True)
    ]
    return {
        "window": window if window in CHART_WINDOWS else "1d",
        "from": int(since.timestamp()),
        "to": int(now.timestamp()),
        "bucket_seconds": bucket_seconds,
        "t": times,
        "low": lows,
        "high": highs,
        "peak": peaks,
        "warning": warnings,
        "critical": criticals,
        "liquidations": liquidations,
    }


def _equity_buckets(
    *, account_id: int, since: datetime, bucket_seconds: int
) -> list[tuple[int, Decimal, Decimal]]:
    """(bucket start epoch, min equity, max equity) per bucket, oldest first. PostgreSQL groups in SQL (a week of
    10 s snapshots is 60 480 rows: they never leave the database); other databases group here."""
    snapshots = AccountSnapshot.objects.filter(account_id=account_id, taken_at__gte=since)
    if connection.vendor == "postgresql":
        sql, params = snapshots.values("taken_at", "equity").query.sql_with_params()
        with connection.cursor() as cursor:
            # The inner SQL is the ORM's own; every value is a parameter.
            select = "SELECT (floor(extract(epoch FROM q.taken_at) / %s) * %s)::bigint AS b, min(q.equity), max(q.equity)"
            query = f"{select} FROM ({sql}) q GROUP BY b ORDER BY b"
            cursor.execute(
                query,
                [bucket_seconds, bucket_seconds, *params],
            )
            return [(int(b), low, high) for b, low, high in cursor.fetchall()]
    buckets: dict[int, tuple[Decimal, Decimal]] = {}
    for taken_at, equity in snapshots.order_by("taken_at").values_list("taken_at", "equity").iterator():
        key = int(taken_at.timestamp()) // bucket_seconds * bucket_seconds
        low, high = buckets.get(key, (equity, equity))
        buckets[key] = (min(low, equity), max(high, equity))
    return [(key, low, high) for key, (low, high) in sorted(buckets.items())]
