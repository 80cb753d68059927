"""Reads for the guards. `account_is_halted` is what sizing and order entry ask before any new position."""

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone as dj_timezone

from accounts.models import TradingAccount, User
from guards.headroom import broker_day_next_reset, permitted_loss_binding_from_rules
from guards.models import (
    GLOBAL_SETTINGS_PK,
    OPEN_INTENT_STATES,
    SETTING_FIELDS,
    AccountGuardSettings,
    CloseIntent,
    GuardAlert,
    GuardSettings,
    GuardState,
    GuardStatus,
)
from rules.selectors import account_rules_summary


@dataclass(frozen=True, slots=True)
class EffectiveGuardSettings:
    """The settings that apply to one account: the override where it has a value, else the global row."""

    drawdown_warning_percent: Decimal
    drawdown_critical_percent: Decimal
    daily_loss_warning_percent: Decimal | None
    daily_loss_critical_percent: Decimal | None
    confirm_readings: int
    liquidation_grace_seconds: int
    close_new_positions_when_halted: bool
    market_guard_enabled: bool
    market_guard_action: str
    market_gap_percent: Decimal
    market_gap_timeframe: int
    market_spread_multiplier: Decimal
    market_spread_window_seconds: int
    market_spread_min_samples: int
    market_spread_cap_points: dict[str, int] = field(default_factory=dict)
    market_stale_quote_seconds: int = 60
    close_price_retries: int = 3
    close_deviation_points: int = 20

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTING_FIELDS}


def _field_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for model_field in GuardSettings._meta.local_fields:
        if model_field.name in SETTING_FIELDS:
            defaults[model_field.name] = model_field.get_default()
    return defaults


def guard_settings_effective(
    *, global_values: dict[str, Any] | None, override: AccountGuardSettings | None
) -> EffectiveGuardSettings:
    """Combine the global values (a missing row or value falls back to the spec's default) with an override."""
    values = _field_defaults()
    if global_values is not None:
        values.update(global_values)  # an empty daily-loss limit is "off"
    if override is not None:
        for name in SETTING_FIELDS:
            value = getattr(override, name)
            if value is not None:
                values[name] = value
        if override.daily_loss_enabled is False:
            values["daily_loss_warning_percent"] = None
            values["daily_loss_critical_percent"] = None
    caps = values.get("market_spread_cap_points") or {}
    if isinstance(caps, str):  # SQLite's json_object() nests a JSON column as text (PostgreSQL as an object)
        caps = json.loads(caps)
    values["market_spread_cap_points"] = dict(caps)
    return EffectiveGuardSettings(**values)


def guard_settings_global_get() -> GuardSettings:
    settings_row, _ = GuardSettings.objects.get_or_create(pk=GLOBAL_SETTINGS_PK)
    return settings_row


def guard_settings_for_account(*, account: TradingAccount) -> EffectiveGuardSettings:
    global_values = GuardSettings.objects.filter(pk=GLOBAL_SETTINGS_PK).values(*SETTING_FIELDS).first()
    override = AccountGuardSettings.objects.filter(account_id=account.pk).first()
    return guard_settings_effective(global_values=global_values, override=override)


def guard_settings_global_values() -> dict[str, Any]:
    """Every global setting by field name (the spec's defaults where the row or a value is missing); one query."""
    global_values = GuardSettings.objects.filter(pk=GLOBAL_SETTINGS_PK).values(*SETTING_FIELDS).first()
    return guard_settings_effective(global_values=global_values, override=None).as_dict()


@dataclass(frozen=True, slots=True)
class MarketReadingNeeds:
    enabled: bool
    timeframe: int


@functools.cache
def _market_needs_sql() -> str:
    """The one statement of guard_market_needs, written once per process (it runs on every sync that holds
    positions; the ORM compiled the same two sub-selects every time)."""
    settings_table, override_table = GuardSettings._meta.db_table, AccountGuardSettings._meta.db_table
    account = AccountGuardSettings._meta.get_field("account").column
    return (
        "SELECT g.market_guard_enabled, g.market_gap_timeframe, o.market_guard_enabled, o.market_gap_timeframe "  # noqa: S608 - names from the models, values as parameters
        f"FROM (SELECT 1) AS one LEFT JOIN {settings_table} g ON g.id = %s "
        f"LEFT JOIN {override_table} o ON o.{account} = %s"
    )


def guard_market_needs(*, account: TradingAccount) -> MarketReadingNeeds:
    """What the market guard needs read from the terminal (is it on; which bars), in one query: the account's
    override where it has a value, else the global row, else the default."""
    with connection.cursor() as cursor:
        cursor.execute(_market_needs_sql(), [GLOBAL_SETTINGS_PK, account.pk])
        enabled, timeframe, override_enabled, override_timeframe = cursor.fetchone()
    defaults = _field_defaults()

    def pick(*values: Any, name: str) -> Any:
        return next((value for value in values if value is not None), defaults[name])

    return MarketReadingNeeds(
        enabled=bool(pick(override_enabled, enabled, name="market_guard_enabled")),
        timeframe=int(pick(override_timeframe, timeframe, name="market_gap_timeframe")),
    )


def account_is_halted(*, account: TradingAccount) -> bool:
    """True while new entries must be refused: liquidation scheduled (tripped) or liquidated and not reset (halted)."""
    return GuardState.objects.filter(
        account_id=account.pk, status__in=[GuardStatus.TRIPPED, GuardStatus.HALTED]
    ).exists()


def guard_state_get(*, account: TradingAccount) -> GuardState | None:
    return GuardState.objects.filter(account_id=account.pk).first()


def guard_alert_list_for_account(*, account: TradingAccount) -> QuerySet[GuardAlert]:
    return GuardAlert.objects.filter(account_id=account.pk).order_by("created_at", "pk")


def close_intent_list_open(*, account: TradingAccount | None = None) -> QuerySet[CloseIntent]:
    intents = CloseIntent.objects.filter(state__in=OPEN_INTENT_STATES)
    if account is not None:
        intents = intents.filter(account_id=account.pk)
    return intents.order_by("created_at", "pk")


CLOSE_PERMISSION = "guards.close_position"


def account_close_allowed(user: User, account: TradingAccount) -> bool:
    """May this user close positions of this account by hand? (The pages show or hide the buttons with it.)

    Owners and support (`guards.close_position`) on any account they see; a trader on their own accounts while the
    owner's global setting `traders_may_close_positions` is on; nobody else (the bot user included)."""
    if not (user.is_active and user.is_authenticated):
        return False
    if user.is_superuser:
        return True
    if user.has_perm(CLOSE_PERMISSION):
        return user.is_operator or account.owner_id == user.pk
    if account.owner_id != user.pk:
        return False
    return bool(
        GuardSettings.objects.filter(pk=GLOBAL_SETTINGS_PK)
        .values_list("traders_may_close_positions", flat=True)
        .first()
    )


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


def guard_day_resets_at(*, snapshot: Any, now: datetime) -> datetime | None:
    """When the daily-loss guard's broker day next changes (guards.headroom.broker_day_next_reset); None without
    a snapshot or while the broker's clock offset is unknown (the guard does not roll its day then either)."""
    if snapshot is None or not snapshot.server_utc_offset_known:
        return None
    return broker_day_next_reset(now=now, offset_seconds=snapshot.server_utc_offset_seconds)


MARKET_ALERTS_SCANNED = 200  # the latest market level change per symbol is among the newest of them


def account_guard_status(*, account: TradingAccount, now: datetime | None = None) -> dict[str, Any]:
    """What the guards say about one account, for the API and the pages: levels and thresholds, peak, day anchor,
    headroom (today's permitted loss, distance to the drawdown limit, time to the daily reset), state, time to
    liquidation, and the market guard per symbol. Plain data (cacheable)."""
    now = now or dj_timezone.now()
    cfg = guard_settings_for_account(account=account)
    state = GuardState.objects.filter(account_id=account.pk).first()
    snapshot = account.latest_snapshot
    equity = snapshot.equity if snapshot is not None else None
    peak = state.peak_equity if state else None
    anchor = state.day_anchor if state else None

    drawdown_floor = None
    if peak is not None:
        drawdown_floor = peak * (1 - cfg.drawdown_critical_percent / 100)
    daily_floor = None
    if anchor is not None and cfg.daily_loss_critical_percent is not None:
        daily_floor = anchor * (1 - cfg.daily_loss_critical_percent / 100)

    market_alerts: dict[str, dict[str, Any]] = {}
    for alert in GuardAlert.objects.filter(
        account_id=account.pk, guard="market", kind="guard_level"
    ).order_by("-created_at", "-pk")[:MARKET_ALERTS_SCANNED]:
        market_alerts.setdefault(
            alert.symbol, {"message": alert.message, "level": alert.level, "at": alert.created_at}
        )
    market = []
    for symbol, memory in sorted(((state.market if state else None) or {}).items()):
        market.append(
            {
                "symbol": symbol,
                "level": memory.get("level", "normal"),
                "marked_tickets": memory.get("marked", []),
                "last_alert": market_alerts.get(symbol),
            }
        )
    rules = account_rules_summary(account=account, now=now)
    daily_permitted = (
        _money(max(equity - daily_floor, Decimal(0)))
        if equity is not None and daily_floor is not None
        else None
    )
    drawdown_permitted = (
        _money(max(equity - drawdown_floor, Decimal(0)))
        if equity is not None and drawdown_floor is not None
        else None
    )
    day_resets_at = guard_day_resets_at(snapshot=snapshot, now=now)
    seconds_to_reset = None if day_resets_at is None else int((day_resets_at - now).total_seconds())
    binding = permitted_loss_binding_from_rules(
        guard_today=daily_permitted,
        guard_total=drawdown_permitted,
        guard_resets_at=day_resets_at,
        rules=rules,
    )
    liquidate_in = None
    if state is not None and state.liquidate_at is not None and state.status == GuardStatus.TRIPPED:
        liquidate_in = max(0, int((state.liquidate_at - now).total_seconds()))
    return {
        "account": account.pk,
        "state": state.status if state else GuardStatus.NORMAL,
        "halted": bool(state and state.is_halted),
        "evaluated_at": state.evaluated_at if state else None,
        "drawdown": {
            "percent": state.drawdown_percent if state else None,
            "level": state.drawdown_level if state else "normal",
            "warning_percent": cfg.drawdown_warning_percent,
            "critical_percent": cfg.drawdown_critical_percent,
            "peak_equity": peak,
            "peak_at": state.peak_at if state else None,
        },
        "daily_loss": {
            "percent": state.daily_loss_percent if state else None,
            "level": state.daily_loss_level if state else "normal",
            "warning_percent": cfg.daily_loss_warning_percent,
            "critical_percent": cfg.daily_loss_critical_percent,
            "day_anchor": anchor,
            "broker_day": state.broker_day if state else None,
        },
        "headroom": {
            "equity": equity,
            "daily_loss_permitted": daily_permitted,
            "to_drawdown_limit": drawdown_permitted,
            "seconds_to_daily_reset": seconds_to_reset,
        },
        "trip": {
            "guard": state.trip_guard if state else "",
            "tripped_at": state.tripped_at if state else None,
            "liquidate_at": state.liquidate_at if state else None,
            "seconds_to_liquidation": liquidate_in,
            "halted_at": state.halted_at if state else None,
        },
        "market": market,
        "rules": rules,
        "binding": binding.as_dict(),
    }


def close_intent_list_for_account(
    *, account: TradingAccount, state: str | None = None
) -> QuerySet[CloseIntent]:
    intents = CloseIntent.objects.filter(account_id=account.pk)
    if state:
        intents = intents.filter(state=state)
    return intents.order_by("-created_at", "-pk")


def guard_alert_list_after(
    *, user: User, after: int, account: TradingAccount | None = None, limit: int = 100
) -> list[GuardAlert]:
    """The ledger after `after`, oldest first: alerts of `account`, or of every account the user sees."""
    from accounts.selectors import trading_account_list_for_user

    alerts = GuardAlert.objects.filter(seq__gt=after)
    if account is not None:
        alerts = alerts.filter(account_id=account.pk)
    elif not user.is_operator:
        alerts = alerts.filter(account__in=trading_account_list_for_user(user=user).values("pk"))
    return list(alerts.order_by("seq")[:limit])


def close_tickets_failed(*, account_id: int, trigger_key: str) -> list[int]:
    """Tickets that closes under `trigger_key` were asked to close and could not: the latest attempt for the
    ticket failed (none confirmed, none in flight). What a reset of a halted account leaves open."""
    latest: dict[int, tuple[int, str]] = {}
    for ticket, attempt, state in CloseIntent.objects.filter(
        account_id=account_id, trigger_key=trigger_key
    ).values_list("ticket", "attempt", "state"):
        if ticket not in latest or attempt > latest[ticket][0]:
            latest[ticket] = (attempt, state)
    return sorted(t for t, (_attempt, state) in latest.items() if state == "failed")
