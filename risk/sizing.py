"""Fixed-risk position sizing (shared/spec/sizing.md), as a pure function with no Django imports.

`size_setup` is the one entry point used by the `size_case` command, the API and the live flow.

Decisions where the spec is silent:

* Order of rejections: `account_halted` comes first, then `close_only` (an account its owner set to close-only
  under a rule set's warning, spec/rules.md), before the spec's `stale_account`, `no_equity`, `no_headroom`,
  `invalid_setup`, `invalid_stop`, then (after computing) `below_min_volume` and `insufficient_margin`.
  A halted or close-only account must never be sized, whatever else is wrong with the request; the live flow
  passes the flags from the guards and the rule sets, the `size_case` command never sets them.
* The headroom cap applies only when the headroom is below the risk amount (`capped_by: "headroom"`); a
  headroom equal to the risk amount changes nothing and says `capped_by: null`.
* Staleness is strict: `snapshot_age_seconds > max_snapshot_age_seconds` is stale, an age exactly at the
  maximum is still fresh ("older than the max age").
* The stop loss is a price, so a non-positive `sl` is `invalid_setup` ("a non-positive price"); in MT5 an sl
  of 0 means "no stop", which must never be sized.
* Budgets use the exact, unrounded `risk_amount`; only reported money is rounded (half-up, 2 decimals).
  Totals are the rounded sums of the exact values, not sums of the rounded values.
* Rejections before the computation (halted, stale, no equity, invalid setup or stop) report `risk_amount`
  and the totals as null with an empty entry list; later rejections report everything computed.
* A config or symbol that breaks the allowed ranges is a programming or data error, not a rejection:
  `size_setup` raises `InvalidSizingInput` (a `ValueError`) with field-level errors.

Exactness: the volume floor is computed as one integer division of exact products
(`budget * tick_size // (|entry - sl| * tick_value * step)`), so `0.3 / 0.01` is exactly 30 and nothing
rounds early. Those steps run in a 50-digit context that traps `Inexact`, so an input too precise for it
raises instead of rounding silently. Only the reported risk (which divides by the tick size) may be inexact,
at 50 significant digits, before it is rounded to cents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any, TypeGuard

PRECISION = 50
# Exact steps: any rounding at all would be a bug or an input beyond our precision, so it raises.
_EXACT = Context(
    prec=PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
# The reported risk divides by the tick size, which need not terminate; 50 digits before rounding to cents.
_APPROX = Context(
    prec=PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)

BUY = "buy"
SELL = "sell"

# Reason codes, in the order they are checked.
ACCOUNT_HALTED = "account_halted"
CLOSE_ONLY = "close_only"
STALE_ACCOUNT = "stale_account"
NO_EQUITY = "no_equity"
NO_HEADROOM = "no_headroom"
INVALID_SETUP = "invalid_setup"
INVALID_STOP = "invalid_stop"
BELOW_MIN_VOLUME = "below_min_volume"
INSUFFICIENT_MARGIN = "insufficient_margin"

# What capped a risk amount (`capped_by`).
HEADROOM = "headroom"

# Allowed ranges (inclusive) of the owner-editable settings.
RISK_PERCENT_RANGE = (Decimal("0.1"), Decimal(50))
MARGIN_BUFFER_PERCENT_RANGE = (Decimal(0), Decimal(100))
MAX_SNAPSHOT_AGE_RANGE = (10, 3600)
MAX_ENTRY_SPLITS = 3


class InvalidSizingInput(ValueError):
    """A config or symbol outside its allowed ranges; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


def _is_finite_decimal(value: object) -> TypeGuard[Decimal]:
    return isinstance(value, Decimal) and value.is_finite()


def _in_range(value: object, low: Decimal, high: Decimal) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and low <= value <= high


def _sums_to_exactly(parts: Sequence[Decimal], total: Decimal) -> bool:
    try:
        with localcontext(_EXACT):
            return sum(parts, _ZERO) == total
    except Inexact:
        return False  # a sum that only rounds to the total is not exactly the total


def validate_sizing_config(
    *,
    risk_percent: object,
    entry_splits: object,
    margin_buffer_percent: object,
    max_snapshot_age_seconds: object,
) -> dict[str, str]:
    """Field-level errors (empty when valid) for the spec's allowed ranges; shared with the risk-config service."""
    errors: dict[str, str] = {}
    low, high = RISK_PERCENT_RANGE
    if not _in_range(risk_percent, low, high):
        errors["risk_percent"] = f"must be a number from {low} to {high}"
    if (
        not isinstance(entry_splits, Sequence)
        or isinstance(entry_splits, str)
        or not 1 <= len(entry_splits) <= MAX_ENTRY_SPLITS
    ):
        errors["entry_splits"] = f"must be 1 to {MAX_ENTRY_SPLITS} parts"
    elif not all(_is_finite_decimal(part) and part > 0 for part in entry_splits):
        errors["entry_splits"] = "every part must be a positive number"
    elif not _sums_to_exactly([Decimal(part) for part in entry_splits], _HUNDRED):
        errors["entry_splits"] = "parts must sum to exactly 100"
    low, high = MARGIN_BUFFER_PERCENT_RANGE
    if not _in_range(margin_buffer_percent, low, high):
        errors["margin_buffer_percent"] = f"must be a number from {low} to {high}"
    age_low, age_high = MAX_SNAPSHOT_AGE_RANGE
    if (
        isinstance(max_snapshot_age_seconds, bool)
        or not isinstance(max_snapshot_age_seconds, int)
        or not age_low <= max_snapshot_age_seconds <= age_high
    ):
        errors["max_snapshot_age_seconds"] = f"must be a whole number of seconds from {age_low} to {age_high}"
    return errors


def validate_symbol_terms(*, symbol: SymbolTerms) -> dict[str, str]:
    """Field-level errors (empty when valid) for terms that would make the arithmetic meaningless."""
    errors: dict[str, str] = {}
    for name in ("point", "trade_tick_size", "trade_tick_value", "volume_min", "volume_max", "volume_step"):
        value = getattr(symbol, name)
        if not _is_finite_decimal(value) or value <= 0:
            errors[name] = "must be a positive number"
    if not _is_finite_decimal(symbol.margin_per_lot) or symbol.margin_per_lot < 0:
        errors["margin_per_lot"] = "must be a number >= 0"
    if "volume_min" not in errors and "volume_max" not in errors and symbol.volume_min > symbol.volume_max:
        errors["volume_min"] = "must not exceed volume_max"
    return errors


@dataclass(frozen=True, slots=True)
class SizingConfig:
    risk_percent: Decimal = Decimal("3.0")
    entry_splits: tuple[Decimal, ...] = (Decimal(50), Decimal(35), Decimal(15))
    margin_buffer_percent: Decimal = Decimal(20)
    max_snapshot_age_seconds: int = 300

    def validate(self) -> dict[str, str]:
        return validate_sizing_config(
            risk_percent=self.risk_percent,
            entry_splits=self.entry_splits,
            margin_buffer_percent=self.margin_buffer_percent,
            max_snapshot_age_seconds=self.max_snapshot_age_seconds,
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    currency: str
    balance: Decimal
    equity: Decimal
    margin_free: Decimal
    snapshot_age_seconds: Decimal | int
    # Under a rule set: min(permitted_loss_today, permitted_loss_total) in account currency; None without one.
    headroom: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SymbolTerms:
    name: str
    digits: int
    point: Decimal
    trade_tick_size: Decimal
    trade_tick_value: Decimal
    volume_min: Decimal
    volume_max: Decimal
    volume_step: Decimal
    margin_per_lot: Decimal


@dataclass(frozen=True, slots=True)
class Setup:
    side: str
    entries: tuple[Decimal, ...]
    sl: Decimal


@dataclass(frozen=True, slots=True)
class EntrySize:
    price: Decimal
    volume: Decimal
    risk: Decimal
    margin: Decimal
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "price": _plain(self.price),
            "volume": _plain(self.volume),
            "risk": _money(self.risk),
            "margin": _money(self.margin),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class SizingResult:
    approved: bool
    reason: str | None
    risk_amount: Decimal | None = None
    entries: tuple[EntrySize, ...] = field(default_factory=tuple)
    total_volume: Decimal | None = None
    total_risk: Decimal | None = None
    total_margin: Decimal | None = None
    capped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec's result JSON: Decimals as strings, money half-up to cents, volumes in the step's decimals."""
        return {
            "approved": self.approved,
            "reason": self.reason,
            "risk_amount": None if self.risk_amount is None else _money(self.risk_amount),
            "entries": [entry.to_dict() for entry in self.entries],
            "total_volume": None if self.total_volume is None else _plain(self.total_volume),
            "total_risk": None if self.total_risk is None else _money(self.total_risk),
            "total_margin": None if self.total_margin is None else _money(self.total_margin),
            "capped_by": self.capped_by,
        }


def _money(value: Decimal) -> str:
    return format(value.quantize(_CENT, rounding=ROUND_HALF_UP, context=_APPROX), "f")


def _plain(value: Decimal) -> str:
    # "f" keeps the decimal text ("2410.0", "0.30") and never switches to exponent notation.
    return format(value, "f")


def _reject(reason: str) -> SizingResult:
    return SizingResult(approved=False, reason=reason)


def _setup_is_valid(*, setup: Setup, splits: int) -> bool:
    count = len(setup.entries)
    if count == 0 or count > splits or (count != 1 and count != splits):
        return False
    if setup.side not in (BUY, SELL):
        return False
    return all(price > 0 for price in setup.entries) and setup.sl > 0


def _splits_for(*, setup: Setup, config: SizingConfig) -> tuple[Decimal, ...]:
    # One entry takes the whole budget; otherwise entry i takes split i.
    return (_HUNDRED,) if len(setup.entries) == 1 else config.entry_splits


def _stop_is_valid(*, setup: Setup) -> bool:
    if setup.side == BUY:
        return all(setup.sl < price for price in setup.entries)
    return all(setup.sl > price for price in setup.entries)


def _size_entry(*, price: Decimal, budget: Decimal, sl: Decimal, symbol: SymbolTerms) -> EntrySize:
    distance = abs(price - sl)
    step = symbol.volume_step
    # floor(budget / loss_per_lot / step) with loss_per_lot = distance / tick_size * tick_value, as one exact
    # integer division so that nothing is rounded before the floor.
    steps = (budget * symbol.trade_tick_size) // (distance * symbol.trade_tick_value * step)
    volume = steps * step
    if volume > symbol.volume_max:
        volume = (symbol.volume_max // step) * step
    note = None
    if volume < symbol.volume_min:
        volume, note = _ZERO * step, BELOW_MIN_VOLUME
    risk = _APPROX.divide(volume * distance * symbol.trade_tick_value, symbol.trade_tick_size)
    return EntrySize(price=price, volume=volume, risk=risk, margin=volume * symbol.margin_per_lot, note=note)


def size_setup(
    *,
    account: AccountState,
    config: SizingConfig,
    symbol: SymbolTerms,
    setup: Setup,
    account_halted: bool = False,
    close_only: bool = False,
) -> SizingResult:
    """Size a setup under fixed-risk rules; a rejection is a result, bad config or symbol terms raise."""
    errors = config.validate() | validate_symbol_terms(symbol=symbol)
    if errors:
        raise InvalidSizingInput(errors)
    if account_halted:
        return _reject(ACCOUNT_HALTED)
    if close_only:
        return _reject(CLOSE_ONLY)
    if account.snapshot_age_seconds > config.max_snapshot_age_seconds:
        return _reject(STALE_ACCOUNT)
    if account.equity <= 0:
        return _reject(NO_EQUITY)
    if account.headroom is not None and account.headroom <= 0:
        return _reject(NO_HEADROOM)
    if not _setup_is_valid(setup=setup, splits=len(config.entry_splits)):
        return _reject(INVALID_SETUP)
    if not _stop_is_valid(setup=setup):
        return _reject(INVALID_STOP)

    with localcontext(_EXACT):
        risk_amount = account.equity * config.risk_percent / _HUNDRED
        capped_by = None
        if account.headroom is not None and account.headroom < risk_amount:
            risk_amount, capped_by = account.headroom, HEADROOM
        entries = tuple(
            _size_entry(price=price, budget=risk_amount * split / _HUNDRED, sl=setup.sl, symbol=symbol)
            for price, split in zip(setup.entries, _splits_for(setup=setup, config=config), strict=True)
        )
        total_volume = sum((entry.volume for entry in entries), _ZERO * symbol.volume_step)
        # The risks are already 50-digit approximations, so their sum may round too.
        total_risk = _ZERO
        for entry in entries:
            total_risk = _APPROX.add(total_risk, entry.risk)
        total_margin = sum((entry.margin for entry in entries), _ZERO)
        required_margin = total_margin * (1 + config.margin_buffer_percent / _HUNDRED)

    reason = None
    if all(entry.volume == 0 for entry in entries):
        reason = BELOW_MIN_VOLUME
    elif required_margin > account.margin_free:
        reason = INSUFFICIENT_MARGIN
    return SizingResult(
        approved=reason is None,
        reason=reason,
        risk_amount=risk_amount,
        entries=entries,
        total_volume=total_volume,
        total_risk=total_risk,
        total_margin=total_margin,
        capped_by=capped_by,
    )
