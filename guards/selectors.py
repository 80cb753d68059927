"""Reads for the guards. `account_is_halted` is what sizing and order entry ask before any new position."""

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Subquery

from accounts.models import TradingAccount
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


def guard_market_needs(*, account: TradingAccount) -> MarketReadingNeeds:
    """What the market guard needs read from the terminal (is it on; which bars), in one query: the account's
    override where it has a value, else the global row, else the default."""
    defaults = _field_defaults()
    override = AccountGuardSettings.objects.filter(account_id=account.pk)
    row = (
        GuardSettings.objects.filter(pk=GLOBAL_SETTINGS_PK)
        .annotate(
            override_enabled=Subquery(override.values("market_guard_enabled")[:1]),
            override_timeframe=Subquery(override.values("market_gap_timeframe")[:1]),
        )
        .values("market_guard_enabled", "market_gap_timeframe", "override_enabled", "override_timeframe")
        .first()
    ) or {}

    def pick(name: str, override_name: str) -> Any:
        for value in (row.get(override_name), row.get(name)):
            if value is not None:
                return value
        return defaults[name]

    return MarketReadingNeeds(
        enabled=bool(pick("market_guard_enabled", "override_enabled")),
        timeframe=int(pick("market_gap_timeframe", "override_timeframe")),
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
