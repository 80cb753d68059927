"""Rule-set evaluation (shared/spec/rules.md): days, day bases, limits, objectives, headroom. Pure: no Django.

One incremental state, `RulesState`, serves both the offline `rules_case` command and the live guard pipeline:
each reading costs O(1) (the day base, the trailing reference, the day records and the breach are kept), so the
live flow never replays history, and a replay of stored snapshots and trades gives the same state as the live run.

`evaluate()` is the offline entry point: readings in time order, each trade event (opened, closed) applied
when the evaluation reaches its time, nothing after the last evaluated reading.

Decisions where the spec is silent:
* Readings with equal times are allowed (not "out of order"); the day base of a day whose boundary equals a
  reading's time is that reading (the last one at that instant), as "the last reading at or before" says.
* Without a profit target, `profit_target_met` is null and the account is never `passed`.
* `best_day_share` is reported whether or not `best_day_percent` is set.
* A trade event exactly at the last evaluated reading counts ("both included"); a breach ends the evaluation
  at the breaching reading, so trade events after its time are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")

OF_INITIAL, OF_BASE = "initial", "base"
DAILY_OF = (OF_INITIAL, OF_BASE)
BASE_BALANCE, BASE_EQUITY, BASE_MAX = "balance", "equity", "max"
DAILY_BASES = (BASE_BALANCE, BASE_EQUITY, BASE_MAX)
MODE_STATIC, MODE_EOD_TRAILING, MODE_INTRADAY_TRAILING = "static", "eod_trailing", "intraday_trailing"
MAX_LOSS_MODES = (MODE_STATIC, MODE_EOD_TRAILING, MODE_INTRADAY_TRAILING)

STATUS_ACTIVE, STATUS_PASSED, STATUS_BREACHED = "active", "passed", "breached"
LEVEL_NORMAL, LEVEL_WARNING, LEVEL_BREACHED = "normal", "warning", "breached"
RULE_DAILY_LOSS, RULE_MAX_LOSS = "daily_loss", "max_loss"

DEFAULT_WARN_AT_PERCENT_USED = Decimal(80)
_RESET_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class InvalidRuleSet(ValueError):
    """A rule set that breaks the spec's constraints; `errors` maps a field path to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone (from the system database or the `tzdata` package); ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_reset_time(text: str) -> time:
    """`HH:MM` (00:00 to 23:59); ValueError otherwise."""
    match = _RESET_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"must be a time HH:MM from 00:00 to 23:59 (got {text!r})")
    return time(int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class DailyLoss:
    percent: Decimal
    of: str = OF_INITIAL
    base: str = BASE_BALANCE


@dataclass(frozen=True, slots=True)
class MaxLoss:
    percent: Decimal
    mode: str = MODE_STATIC
    lock_at_initial: bool = True


@dataclass(frozen=True, slots=True)
class RuleSet:
    initial_balance: Decimal
    start: datetime
    timezone: str = "UTC"
    reset_time: time = time(0, 0)
    daily_loss: DailyLoss | None = None
    max_loss: MaxLoss | None = None
    profit_target_percent: Decimal | None = None
    min_trading_days: int = 0
    best_day_percent: Decimal | None = None
    warn_at_percent_used: Decimal = DEFAULT_WARN_AT_PERCENT_USED

    def validate(self) -> dict[str, str]:
        return validate_rule_terms(
            initial_balance=self.initial_balance,
            timezone=self.timezone,
            daily_loss=self.daily_loss,
            max_loss=self.max_loss,
            profit_target_percent=self.profit_target_percent,
            min_trading_days=self.min_trading_days,
            best_day_percent=self.best_day_percent,
            warn_at_percent_used=self.warn_at_percent_used,
        ) | ({} if _is_aware(self.start) else {"start": "must be a time with a zone"})

    # ------------------------------------------------------------ days

    def day_start(self, day: date) -> datetime:
        """The UTC instant of `day` at `reset_time` in the zone; gaps and overlaps resolved with fold=0."""
        return day_start(day, timezone=self.timezone, reset_time=self.reset_time)

    def day_of(self, moment: datetime) -> date:
        """The day (named by the local date of its start boundary) that contains `moment`."""
        return day_of(moment, timezone=self.timezone, reset_time=self.reset_time)


def day_start(day: date, *, timezone: str, reset_time: time) -> datetime:
    """The UTC instant of `day` at `reset_time` in `timezone`; gaps and overlaps resolved with fold=0."""
    return datetime.combine(day, reset_time, tzinfo=zone(timezone)).astimezone(UTC)


def day_of(moment: datetime, *, timezone: str, reset_time: time) -> date:
    """The day (named by the local date of its start boundary) that contains `moment`."""
    day = moment.astimezone(zone(timezone)).date()
    while moment < day_start(day, timezone=timezone, reset_time=reset_time):
        day -= timedelta(days=1)
    while moment >= day_start(day + timedelta(days=1), timezone=timezone, reset_time=reset_time):
        day += timedelta(days=1)
    return day


def next_day_boundary(moment: datetime, *, timezone: str, reset_time: time) -> datetime:
    """The first day boundary strictly after `moment`, in UTC. At a boundary the day it opens has begun, so the
    next one is the following day's (a countdown never shows 0:00 for a reset that has happened)."""
    day = day_of(moment, timezone=timezone, reset_time=reset_time)
    return day_start(day + timedelta(days=1), timezone=timezone, reset_time=reset_time)


def next_reset_live(
    evaluated: datetime | None, *, now: datetime, timezone: str, reset_time: time
) -> datetime | None:
    """What a page counts down to: the evaluation's `next_reset` while it is still ahead of `now`; once passed (no
    reading evaluated since that boundary: a quiet or stale account) the first boundary after `now`. None while
    nothing was evaluated."""
    if evaluated is None:
        return None
    if evaluated > now:
        return evaluated
    return next_day_boundary(now, timezone=timezone, reset_time=reset_time)


def _is_aware(moment: object) -> bool:
    return isinstance(moment, datetime) and moment.utcoffset() is not None


def _positive(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


def validate_rule_terms(
    *,
    initial_balance: object,
    timezone: object,
    daily_loss: DailyLoss | None,
    max_loss: MaxLoss | None,
    profit_target_percent: object,
    min_trading_days: object,
    best_day_percent: object,
    warn_at_percent_used: object,
) -> dict[str, str]:
    """Field-level errors (empty when valid); shared by the case parser, the rule-set models and the API."""
    errors: dict[str, str] = {}
    if not _positive(initial_balance):
        errors["initial_balance"] = "must be a positive number"
    try:
        zone(str(timezone))
    except ValueError as exc:
        errors["timezone"] = str(exc)
    if daily_loss is not None:
        if not _positive(daily_loss.percent):
            errors["daily_loss.percent"] = "must be a positive number"
        if daily_loss.of not in DAILY_OF:
            errors["daily_loss.of"] = f"must be one of {', '.join(DAILY_OF)} (got {daily_loss.of!r})"
        if daily_loss.base not in DAILY_BASES:
            errors["daily_loss.base"] = f"must be one of {', '.join(DAILY_BASES)} (got {daily_loss.base!r})"
    if max_loss is not None:
        if not _positive(max_loss.percent):
            errors["max_loss.percent"] = "must be a positive number"
        if max_loss.mode not in MAX_LOSS_MODES:
            errors["max_loss.mode"] = f"must be one of {', '.join(MAX_LOSS_MODES)} (got {max_loss.mode!r})"
        if not isinstance(max_loss.lock_at_initial, bool):
            errors["max_loss.lock_at_initial"] = "must be true or false"
    if profit_target_percent is not None and not _positive(profit_target_percent):
        errors["profit_target.percent"] = "must be a positive number"
    if isinstance(min_trading_days, bool) or not isinstance(min_trading_days, int) or min_trading_days < 0:
        errors["min_trading_days"] = "must be a whole number >= 0"
    if best_day_percent is not None and not _positive(best_day_percent):
        errors["best_day_percent"] = "must be a positive number"
    if not _positive(warn_at_percent_used) or warn_at_percent_used > _HUNDRED:  # type: ignore[operator]
        errors["warn_at_percent_used"] = "must be a number above 0 and at most 100"
    return errors


@dataclass(frozen=True, slots=True)
class Reading:
    time: datetime
    balance: Decimal
    equity: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    open_time: datetime
    close_time: datetime | None
    profit: Decimal


@dataclass(slots=True)
class Day:
    day: date
    start: datetime
    base: Decimal  # the day base (initial_balance until a reading at or before the boundary exists)
    boundary_balance: Decimal | None  # balance of the last reading at or before the boundary
    lowest_equity: Decimal | None = None
    closed_profit: Decimal = _ZERO
    traded: bool = False


@dataclass(frozen=True, slots=True)
class Breach:
    rule: str
    time: datetime
    equity: Decimal
    limit: Decimal


@dataclass(frozen=True, slots=True)
class Headroom:
    daily_limit: Decimal | None
    permitted_loss_today: Decimal | None
    max_loss_limit: Decimal | None
    permitted_loss_total: Decimal | None
    daily_used_percent: Decimal | None
    total_used_percent: Decimal | None
    next_reset: datetime

    @property
    def amount(self) -> Decimal | None:
        """The smaller of the two permitted losses (what sizing caps the risk at); null when both limits are off."""
        values = [v for v in (self.permitted_loss_today, self.permitted_loss_total) if v is not None]
        return min(values) if values else None


@dataclass(frozen=True, slots=True)
class Summary:
    status: str
    level: str
    breach: Breach | None
    trading_days: int
    best_day_share: Decimal | None
    profit_target_met: bool | None
    headroom: Headroom | None  # null before the first reading


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class RulesState:
    """The incremental evaluation of one rule set over one account's readings and trades."""

    rules: RuleSet
    days: list[Day] = field(default_factory=list)
    trail_before: Decimal = _ZERO  # max(initial, boundary balances of the days before the current one)
    peak_equity: Decimal = _ZERO  # max(initial, every equity so far): the intraday trailing reference
    last: Reading | None = None
    breach: Breach | None = None
    deposits: Decimal = _ZERO  # net balance operations: they move the initial-balance anchors, never P/L

    @property
    def anchor(self) -> Decimal:
        """initial_balance moved by the balance operations so far (never below zero)."""
        return max(_ZERO, self.rules.initial_balance + self.deposits)

    @classmethod
    def begin(cls, rules: RuleSet) -> RulesState:
        first = rules.day_of(rules.start)
        state = cls(rules=rules, trail_before=rules.initial_balance, peak_equity=rules.initial_balance)
        state.days.append(
            Day(day=first, start=rules.day_start(first), base=rules.initial_balance, boundary_balance=None)
        )
        return state

    # ------------------------------------------------------------ inputs

    @property
    def current(self) -> Day:
        return self.days[-1]

    @property
    def next_boundary(self) -> datetime:
        return self.rules.day_start(self.current.day + timedelta(days=1))

    @property
    def ended(self) -> bool:
        return self.breach is not None

    def advance_to(self, moment: datetime) -> None:
        """Open every day whose start boundary is at or before `moment` (days without readings included)."""
        if self.ended:
            return
        while moment >= (boundary := self.next_boundary):
            previous = self.current
            if previous.boundary_balance is not None:
                self.trail_before = max(self.trail_before, previous.boundary_balance)
            last = self.last
            self.days.append(
                Day(
                    day=self.current.day + timedelta(days=1),
                    start=boundary,
                    base=self.anchor if last is None else self._base_of(last),
                    boundary_balance=None if last is None else last.balance,
                )
            )

    def observe(self, reading: Reading) -> Breach | None:
        """Evaluate one reading (in time order); returns the breach when this reading breaches."""
        if self.ended:
            return None
        if self.last is not None and reading.time < self.last.time:
            raise ValueError("readings must be in ascending time order")
        self.advance_to(reading.time)
        day = self.current
        if reading.time == day.start:
            # The last reading at or before the boundary is this one: it sets the day base.
            day.base = self._base_of(reading)
            day.boundary_balance = reading.balance
        day.lowest_equity = (
            reading.equity if day.lowest_equity is None else min(day.lowest_equity, reading.equity)
        )
        self.peak_equity = max(self.peak_equity, reading.equity)
        self.last = reading
        daily_limit, max_loss_limit = self.daily_limit(), self.max_loss_limit()
        if daily_limit is not None and reading.equity < daily_limit:
            self.breach = Breach(RULE_DAILY_LOSS, reading.time, reading.equity, daily_limit)
        elif max_loss_limit is not None and reading.equity < max_loss_limit:
            self.breach = Breach(RULE_MAX_LOSS, reading.time, reading.equity, max_loss_limit)
        return self.breach

    def trade_opened(self, moment: datetime) -> None:
        day = self._day_for(moment)
        if day is not None:
            day.traded = True

    def trade_closed(self, moment: datetime, profit: Decimal) -> None:
        day = self._day_for(moment)
        if day is not None:
            day.closed_profit += profit

    def balance_operation(self, amount: Decimal) -> None:
        """A deposit/withdrawal/credit/bonus (spec/guards.md): not a gain or loss, so it moves the current day base,
        the trailing references and the boundary balance by its amount, never below zero."""
        if self.ended:
            return
        day = self.current
        day.base = max(_ZERO, day.base + amount)
        if day.boundary_balance is not None:
            day.boundary_balance = max(_ZERO, day.boundary_balance + amount)
        self.trail_before = max(_ZERO, self.trail_before + amount)
        self.peak_equity = max(_ZERO, self.peak_equity + amount)
        self.deposits += amount

    def _day_for(self, moment: datetime) -> Day | None:
        """The day record of a trade event inside the evaluation (start .. last evaluated reading), else None."""
        if moment < self.rules.start or self.last is None or moment > self.last.time:
            return None
        if self.breach is not None and moment > self.breach.time:
            return None
        wanted = self.rules.day_of(moment)
        for day in reversed(self.days):  # almost always the current day
            if day.day == wanted:
                return day
        return None

    def _base_of(self, reading: Reading) -> Decimal:
        daily = self.rules.daily_loss
        kind = daily.base if daily is not None else BASE_BALANCE
        if kind == BASE_EQUITY:
            return reading.equity
        if kind == BASE_MAX:
            return max(reading.balance, reading.equity)
        return reading.balance

    # ------------------------------------------------------------ limits

    def allowed_daily(self, day: Day | None = None) -> Decimal | None:
        daily = self.rules.daily_loss
        if daily is None:
            return None
        amount = self.rules.initial_balance if daily.of == OF_INITIAL else (day or self.current).base
        return daily.percent / _HUNDRED * amount

    def daily_limit_of(self, day: Day) -> Decimal | None:
        allowed = self.allowed_daily(day)
        return None if allowed is None else day.base - allowed

    def daily_limit(self) -> Decimal | None:
        return self.daily_limit_of(self.current)

    def allowed_total(self) -> Decimal | None:
        rule = self.rules.max_loss
        return None if rule is None else rule.percent / _HUNDRED * self.rules.initial_balance

    def max_loss_reference(self) -> Decimal:
        rule = self.rules.max_loss
        if rule is None or rule.mode == MODE_STATIC:
            return self.anchor
        if rule.mode == MODE_INTRADAY_TRAILING:
            return self.peak_equity
        boundary = self.current.boundary_balance
        return self.trail_before if boundary is None else max(self.trail_before, boundary)

    def max_loss_limit(self) -> Decimal | None:
        rule, allowed = self.rules.max_loss, self.allowed_total()
        if rule is None or allowed is None:
            return None
        limit = self.max_loss_reference() - allowed
        if rule.mode != MODE_STATIC and rule.lock_at_initial:
            limit = min(limit, self.anchor)
        return limit

    # ------------------------------------------------------------ results

    def trading_days(self) -> int:
        return sum(1 for day in self.days if day.traded)

    def best_day_share(self) -> Decimal | None:
        total = sum((day.closed_profit for day in self.days), _ZERO)
        if total <= 0:
            return None
        best = max(day.closed_profit for day in self.days)
        return _half_up(best / total * _HUNDRED)

    def profit_target_met(self) -> bool | None:
        target = self.rules.profit_target_percent
        if target is None or self.last is None:
            return None if target is None else False
        return self.last.balance - self.deposits >= self.rules.initial_balance * (1 + target / _HUNDRED)

    def headroom(self) -> Headroom | None:
        if self.last is None:
            return None
        equity = self.last.equity
        daily_limit, max_loss_limit = self.daily_limit(), self.max_loss_limit()
        today = None if daily_limit is None else max(_ZERO, equity - daily_limit)
        total = None if max_loss_limit is None else max(_ZERO, equity - max_loss_limit)
        return Headroom(
            daily_limit=daily_limit,
            permitted_loss_today=today,
            max_loss_limit=max_loss_limit,
            permitted_loss_total=total,
            daily_used_percent=_used(today, self.allowed_daily()),
            total_used_percent=_used(total, self.allowed_total()),
            next_reset=self.next_boundary,
        )

    def summary(self) -> Summary:
        headroom = self.headroom()
        target_met = self.profit_target_met()
        share = self.best_day_share()
        best_day_holds = (
            self.rules.best_day_percent is None or share is None or share <= self.rules.best_day_percent
        )
        if self.breach is not None:
            status = level = STATUS_BREACHED
        else:
            passed = (
                target_met is True and self.trading_days() >= self.rules.min_trading_days and best_day_holds
            )
            status = STATUS_PASSED if passed else STATUS_ACTIVE
            used = [] if headroom is None else [headroom.daily_used_percent, headroom.total_used_percent]
            warn = self.rules.warn_at_percent_used
            level = LEVEL_WARNING if any(u is not None and u >= warn for u in used) else LEVEL_NORMAL
        return Summary(
            status=status,
            level=level,
            breach=self.breach,
            trading_days=self.trading_days(),
            best_day_share=share,
            profit_target_met=target_met,
            headroom=headroom,
        )

    def to_result(self) -> dict[str, Any]:
        """The `rules_case` result (spec "The result"); money as JSON numbers."""
        summary = self.summary()
        headroom = summary.headroom
        return {
            "status": summary.status,
            "breach": None if summary.breach is None else breach_dict(summary.breach),
            "days": [self.day_dict(day) for day in self.days],
            "trading_days": summary.trading_days,
            "best_day_share": _number(summary.best_day_share),
            "profit_target_met": summary.profit_target_met,
            "level": summary.level,
            "headroom": None if headroom is None else headroom_dict(headroom),
        }

    def day_dict(self, day: Day) -> dict[str, Any]:
        daily_on = self.rules.daily_loss is not None
        return {
            "day": day.day.isoformat(),
            "start": iso_utc(day.start),
            "base": _number(day.base) if daily_on else None,
            "daily_limit": _number(self.daily_limit_of(day)),
            "lowest_equity": _number(day.lowest_equity),
            "closed_profit": _number(day.closed_profit),
            "traded": day.traded,
        }


def _used(permitted: Decimal | None, allowed: Decimal | None) -> Decimal | None:
    if permitted is None or allowed is None:
        return None
    return _half_up(max(_ZERO, _HUNDRED * (1 - permitted / allowed)))


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: Decimal | None) -> float | None:
    # JSON boundary only (as in reconciliation.matching): money is printed as a JSON number.
    return None if value is None else float(value)


def breach_dict(breach: Breach) -> dict[str, Any]:
    return {
        "rule": breach.rule,
        "time": iso_utc(breach.time),
        "equity": _number(breach.equity),
        "limit": _number(breach.limit),
    }


def headroom_dict(headroom: Headroom) -> dict[str, Any]:
    return {
        "daily_limit": _number(headroom.daily_limit),
        "permitted_loss_today": _number(headroom.permitted_loss_today),
        "max_loss_limit": _number(headroom.max_loss_limit),
        "permitted_loss_total": _number(headroom.permitted_loss_total),
        "daily_used_percent": _number(headroom.daily_used_percent),
        "total_used_percent": _number(headroom.total_used_percent),
        "next_reset": iso_utc(headroom.next_reset),
    }


def evaluate(*, rules: RuleSet, readings: list[Reading], trades: list[Trade]) -> RulesState:
    """Evaluate readings (ascending time) and trades from scratch; the state answers every question."""
    errors = rules.validate()
    if errors:
        raise InvalidRuleSet(errors)
    events: list[tuple[datetime, int, Trade]] = []
    for trade in trades:
        events.append((trade.open_time, 0, trade))
        if trade.close_time is not None:
            events.append((trade.close_time, 1, trade))
    events.sort(key=lambda event: (event[0], event[1]))
    state = RulesState.begin(rules)
    pending = 0
    for reading in readings:
        if reading.time < rules.start:
            raise ValueError("readings must not be before start")
        state.advance_to(reading.time)
        state.observe(reading)
        while pending < len(events) and events[pending][0] <= reading.time:
            moment, kind, trade = events[pending]
            if kind == 0:
                state.trade_opened(moment)
            else:
                state.trade_closed(moment, trade.profit)
            pending += 1
        if state.ended:
            break
    return state
