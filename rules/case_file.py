"""Parse and validate a rules case file (shared/spec/rules.md, "The case file") into `rules.evaluation` inputs.

Pure: no Django. Every error is a `CaseFileError` whose message starts with the JSON path of the bad value,
e.g. `rules.daily_loss.percent: must be a positive number (got 0)`.

Decisions where the spec is silent:
- Required: rules.initial_balance, readings (non-empty), each reading's time/balance/equity, each trade's
  open_time and profit. `rules.start` defaults to the first reading's time, `rules.timezone` to UTC.
- Unknown keys inside `rules` and its limit objects are refused (a misspelt `daily_los` would silently switch a
  limit off); `name` and `description` are allowed and ignored. Unknown keys elsewhere are ignored.
- A limit given as null is off, like an absent one. `lock_at_initial` must be a JSON boolean.
- Readings at the same instant are not "out of order"; a trade's close_time before its open_time is refused.
- A file shaped like shared/cases/*.json ({"case": {...}, "expected": ...}) is read through its "case".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.casefiles import CaseFileError, case_error, expect_array, expect_object, load_json, required
from rules.evaluation import (
    DEFAULT_WARN_AT_PERCENT_USED,
    DailyLoss,
    MaxLoss,
    Reading,
    RuleSet,
    RulesState,
    Trade,
    evaluate,
    parse_reset_time,
)

_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RULE_KEYS = {
    "initial_balance",
    "start",
    "timezone",
    "reset_time",
    "daily_loss",
    "max_loss",
    "profit_target",
    "min_trading_days",
    "best_day_percent",
    "warn_at_percent_used",
    "name",
    "description",
}
_DAILY_KEYS = {"percent", "of", "base"}
_MAX_LOSS_KEYS = {"percent", "mode", "lock_at_initial"}
_TARGET_KEYS = {"percent"}


@dataclass(frozen=True, slots=True)
class RulesCase:
    rules: RuleSet
    readings: list[Reading]
    trades: list[Trade]

    def evaluate(self) -> RulesState:
        return evaluate(rules=self.rules, readings=self.readings, trades=self.trades)


def _number(value: object, path: str) -> Decimal:
    if isinstance(value, bool):
        raise case_error(path, "must be a number", value)
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))  # the float's shortest repr, not its binary value
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value)
    else:
        raise case_error(path, "must be a number", value)
    if not number.is_finite():
        raise case_error(path, "must be a finite number", value)
    return number


def _positive(value: object, path: str) -> Decimal:
    number = _number(value, path)
    if number <= 0:
        raise case_error(path, "must be a positive number", value)
    return number


def _moment(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise case_error(path, "must be an ISO 8601 time with a zone", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise case_error(path, "must be an ISO 8601 time with a zone", value) from None
    if moment.utcoffset() is None:
        raise case_error(path, "must have a zone (Z or an offset)", value)
    return moment.astimezone(UTC)


def _choice(section: Mapping[str, Any], key: str, path: str, default: str, allowed: tuple[str, ...]) -> str:
    value = section.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise case_error(f"{path}.{key}", f"must be one of {', '.join(allowed)}", value)
    return str(value)


def _daily_loss(raw: object, path: str) -> DailyLoss | None:
    if raw is None:
        return None
    section = expect_object(raw, path, known=_DAILY_KEYS)
    return DailyLoss(
        percent=_positive(required(section, "percent", path), f"{path}.percent"),
        of=_choice(section, "of", path, "initial", ("initial", "base")),
        base=_choice(section, "base", path, "balance", ("balance", "equity", "max")),
    )


def _max_loss(raw: object, path: str) -> MaxLoss | None:
    if raw is None:
        return None
    section = expect_object(raw, path, known=_MAX_LOSS_KEYS)
    lock = section.get("lock_at_initial", True)
    if not isinstance(lock, bool):
        raise case_error(f"{path}.lock_at_initial", "must be true or false", lock)
    return MaxLoss(
        percent=_positive(required(section, "percent", path), f"{path}.percent"),
        mode=_choice(section, "mode", path, "static", ("static", "eod_trailing", "intraday_trailing")),
        lock_at_initial=lock,
    )


def _rules(raw: object, path: str, *, first_reading: datetime | None) -> RuleSet:
    section = expect_object(raw, path, known=_RULE_KEYS)
    timezone = section.get("timezone", "UTC")
    if not isinstance(timezone, str) or not timezone:
        raise case_error(f"{path}.timezone", "must be an IANA time zone name", timezone)
    reset_text = section.get("reset_time", "00:00")
    try:
        reset_time = parse_reset_time(reset_text)
    except ValueError as exc:
        raise CaseFileError(f"{path}.reset_time: {exc}") from None
    start = section.get("start")
    if start is None:
        if first_reading is None:
            raise CaseFileError(f"{path}.start: is required")
        start_at = first_reading
    else:
        start_at = _moment(start, f"{path}.start")
    target = section.get("profit_target")
    target_percent = None
    if target is not None:
        target_section = expect_object(target, f"{path}.profit_target", known=_TARGET_KEYS)
        target_percent = _positive(
            required(target_section, "percent", f"{path}.profit_target"), f"{path}.profit_target.percent"
        )
    min_days = section.get("min_trading_days", 0)
    min_days_number = _number(0 if min_days is None else min_days, f"{path}.min_trading_days")
    if min_days_number < 0 or min_days_number != min_days_number.to_integral_value():
        raise case_error(f"{path}.min_trading_days", "must be a whole number >= 0", min_days)
    best_day = section.get("best_day_percent")
    warn = section.get("warn_at_percent_used")
    rules = RuleSet(
        initial_balance=_positive(required(section, "initial_balance", path), f"{path}.initial_balance"),
        start=start_at,
        timezone=timezone,
        reset_time=reset_time,
        daily_loss=_daily_loss(section.get("daily_loss"), f"{path}.daily_loss"),
        max_loss=_max_loss(section.get("max_loss"), f"{path}.max_loss"),
        profit_target_percent=target_percent,
        min_trading_days=int(min_days_number),
        best_day_percent=None if best_day is None else _positive(best_day, f"{path}.best_day_percent"),
        warn_at_percent_used=(
            DEFAULT_WARN_AT_PERCENT_USED if warn is None else _positive(warn, f"{path}.warn_at_percent_used")
        ),
    )
    errors = rules.validate()
    if errors:
        raise CaseFileError("; ".join(f"{path}.{key}: {message}" for key, message in errors.items()))
    return rules


def _readings(raw: object, path: str) -> list[Reading]:
    items = expect_array(raw, path)
    if not items:
        raise CaseFileError(f"{path}: must not be empty")
    readings: list[Reading] = []
    for index, item in enumerate(items):
        at = f"{path}[{index}]"
        section = expect_object(item, at)
        reading = Reading(
            time=_moment(required(section, "time", at), f"{at}.time"),
            balance=_number(required(section, "balance", at), f"{at}.balance"),
            equity=_number(required(section, "equity", at), f"{at}.equity"),
        )
        if readings and reading.time < readings[-1].time:
            raise CaseFileError(
                f"{at}.time: readings must be in ascending time order (got {section['time']})"
            )
        readings.append(reading)
    return readings


def _trades(raw: object, path: str) -> list[Trade]:
    trades: list[Trade] = []
    for index, item in enumerate(expect_array(raw, path)):
        at = f"{path}[{index}]"
        section = expect_object(item, at)
        open_time = _moment(required(section, "open_time", at), f"{at}.open_time")
        close_raw = section.get("close_time")
        close_time = None if close_raw is None else _moment(close_raw, f"{at}.close_time")
        if close_time is not None and close_time < open_time:
            raise case_error(f"{at}.close_time", "must not be before open_time", close_raw)
        trades.append(
            Trade(
                open_time=open_time,
                close_time=close_time,
                profit=_number(required(section, "profit", at), f"{at}.profit"),
            )
        )
    return trades


def parse_case(source: str | bytes | Mapping[str, Any]) -> RulesCase:
    """Read a case from JSON text or an already-decoded mapping; raise `CaseFileError` naming the bad path."""
    raw = dict(source) if isinstance(source, Mapping) else load_json(source)
    top = expect_object(raw, "top level")
    prefix = ""
    if "rules" not in top and isinstance(top.get("case"), dict):
        top, prefix = top["case"], "case."
    readings = _readings(required(top, "readings", prefix.rstrip(".")), f"{prefix}readings")
    rules = _rules(
        required(top, "rules", prefix.rstrip(".")), f"{prefix}rules", first_reading=readings[0].time
    )
    if readings[0].time < rules.start:
        raise CaseFileError(f"{prefix}readings[0].time: must not be before rules.start")
    trades_raw = top.get("trades")
    trades = [] if trades_raw is None else _trades(trades_raw, f"{prefix}trades")
    return RulesCase(rules=rules, readings=readings, trades=trades)


def rules_parse(raw: object, path: str, *, default_start: datetime) -> RuleSet:
    """A `rules` object of the case-file format on its own (the scenario runner's `rules` key), validated."""
    rules = _rules(raw, path, first_reading=default_start)
    errors = rules.validate()
    if errors:
        name, message = next(iter(errors.items()))
        raise CaseFileError(f"{path}.{name}: {message}")
    return rules
