"""The preset rule sets an owner starts from (issue #16; sources in docs/GUARDS.md "Rule sets"). Pure: no Django.

Each preset is the terms of a rule set in the field names of `rules.models.RuleSet` (the API's names too). The data
migration `0002_presets_and_roles` installs one rule set per preset with a frozen copy of these values; a test keeps
the two equal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

KIND_LIMITS, KIND_CLASSIC = "limits", "classic"

TWO_STEP, ONE_STEP, NEW_YORK_CLOSE, CLASSIC = "two_step", "one_step", "ny_close", "classic"

PRESETS: dict[str, dict[str, Any]] = {
    TWO_STEP: {
        "name": "Two-step challenge",
        "description": "5 % daily loss of the initial balance from midnight Europe/Prague on the balance, 10 % static "
        "maximum loss, 10 % profit target, 4 trading days.",
        "kind": KIND_LIMITS,
        "timezone": "Europe/Prague",
        "reset_time": "00:00",
        "daily_loss_percent": Decimal(5),
        "daily_loss_of": "initial",
        "daily_loss_base": "balance",
        "max_loss_percent": Decimal(10),
        "max_loss_mode": "static",
        "max_loss_lock_at_initial": True,
        "profit_target_percent": Decimal(10),
        "min_trading_days": 4,
        "best_day_percent": None,
        "warn_at_percent_used": Decimal(80),
        "close_only_on_warning": False,
    },
    ONE_STEP: {
        "name": "One-step challenge",
        "description": "3 % daily loss of the initial balance from midnight Europe/Prague, 6 % end-of-day trailing "
        "maximum loss locking at the initial balance, 10 % profit target, best day at most 50 % of the profit.",
        "kind": KIND_LIMITS,
        "timezone": "Europe/Prague",
        "reset_time": "00:00",
        "daily_loss_percent": Decimal(3),
        "daily_loss_of": "initial",
        "daily_loss_base": "balance",
        "max_loss_percent": Decimal(6),
        "max_loss_mode": "eod_trailing",
        "max_loss_lock_at_initial": True,
        "profit_target_percent": Decimal(10),
        "min_trading_days": 0,
        "best_day_percent": Decimal(50),
        "warn_at_percent_used": Decimal(80),
        "close_only_on_warning": False,
    },
    NEW_YORK_CLOSE: {
        "name": "New York close (17:00), higher of balance and equity",
        "description": "Days reset at 17:00 America/New_York; 5 % daily loss of the initial balance from the higher "
        "of balance and equity at the reset, 10 % static maximum loss, 8 % profit target, 3 trading days.",
        "kind": KIND_LIMITS,
        "timezone": "America/New_York",
        "reset_time": "17:00",
        "daily_loss_percent": Decimal(5),
        "daily_loss_of": "initial",
        "daily_loss_base": "max",
        "max_loss_percent": Decimal(10),
        "max_loss_mode": "static",
        "max_loss_lock_at_initial": True,
        "profit_target_percent": Decimal(8),
        "min_trading_days": 3,
        "best_day_percent": None,
        "warn_at_percent_used": Decimal(80),
        "close_only_on_warning": False,
    },
    CLASSIC: {
        "name": "Classic guards",
        "description": "No funded-account limits: the drawdown and daily-loss guards of the guard settings, as "
        "every account without a rule set has.",
        "kind": KIND_CLASSIC,
        "timezone": "UTC",
        "reset_time": "00:00",
        "daily_loss_percent": None,
        "daily_loss_of": "initial",
        "daily_loss_base": "balance",
        "max_loss_percent": None,
        "max_loss_mode": "static",
        "max_loss_lock_at_initial": True,
        "profit_target_percent": None,
        "min_trading_days": 0,
        "best_day_percent": None,
        "warn_at_percent_used": Decimal(80),
        "close_only_on_warning": False,
    },
}
