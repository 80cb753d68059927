"""Parse and validate a size case file (shared/spec/sizing.md, "Case file") into `risk.sizing` inputs.

Pure: no Django. Every error is a `CaseFileError` whose message starts with the JSON path of the bad value,
e.g. `symbol.volume_step: must be a positive number (got 0)`.

Decisions where the spec is silent:
- JSON text is read with `parse_float=Decimal, parse_int=Decimal`, so each number keeps its decimal text
  (2410.0 is reported back as "2410.0"). NaN/Infinity are refused with their path; duplicate keys are refused.
- Numbers may also be decimal strings ("1.0850", "1e-5"); anything else (bools, "1_000", " 1") is refused.
  Dict input may carry floats, read as `Decimal(str(x))` (the float's shortest repr).
- Semantic problems the spec lists as rejection reasons (empty entries, a non-positive price, a side other
  than buy/sell, a stop on the wrong side) are NOT file errors: they reach `size_setup` and come back as
  `invalid_setup` / `invalid_stop` results. Only shape, type and symbol/config range errors are file errors.
- `config` is optional and so is each of its keys (missing keys take the defaults); unknown keys in `config`
  are refused, because a misspelt key would silently size with the default. Unknown keys elsewhere are ignored.
- A file shaped like shared/cases/*.json ({"case": {...}, "expected": ...}) is read through its "case".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.casefiles import (
    CaseFileError,
    case_error,
    describe,
    expect_array,
    expect_object,
    load_json,
    required,
)
from risk.sizing import (
    AccountState,
    Setup,
    SizingConfig,
    SizingResult,
    SymbolTerms,
    size_setup,
    validate_sizing_config,
    validate_symbol_terms,
)

_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CONFIG_KEYS = ("risk_percent", "entry_splits", "margin_buffer_percent", "max_snapshot_age_seconds")
_SYMBOL_NUMBERS = (
    "point",
    "trade_tick_size",
    "trade_tick_value",
    "volume_min",
    "volume_max",
    "volume_step",
    "margin_per_lot",
)


@dataclass(frozen=True, slots=True)
class SizeCase:
    account: AccountState
    config: SizingConfig
    symbol: SymbolTerms
    setup: Setup

    def size(self) -> SizingResult:
        return size_setup(account=self.account, config=self.config, symbol=self.symbol, setup=self.setup)


def _number(value: object, path: str, *, problem: str = "must be a number") -> Decimal:
    if isinstance(value, bool):
        raise case_error(path, problem, value)
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))  # the float's shortest repr, not its binary value
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value)
    else:
        raise case_error(path, problem, value)
    if not number.is_finite():
        raise case_error(path, "must be a finite number", value)
    return number


def _integer(value: object, path: str, *, minimum: int) -> int:
    problem = f"must be an integer >= {minimum}"
    number = _number(value, path, problem=problem)
    if number != number.to_integral_value() or number < minimum:
        raise case_error(path, problem, value)
    return int(number)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise case_error(path, "must be a non-empty string", value)
    return value


def _account(raw: object) -> AccountState:
    section = expect_object(raw, "account")
    age = _number(required(section, "snapshot_age_seconds", "account"), "account.snapshot_age_seconds")
    if age < 0:
        raise case_error(
            "account.snapshot_age_seconds", "must be a number >= 0", section["snapshot_age_seconds"]
        )
    return AccountState(
        currency=_text(required(section, "currency", "account"), "account.currency"),
        balance=_number(required(section, "balance", "account"), "account.balance"),
        equity=_number(required(section, "equity", "account"), "account.equity"),
        margin_free=_number(required(section, "margin_free", "account"), "account.margin_free"),
        snapshot_age_seconds=age,
        headroom=_headroom(section.get("headroom")),
    )


def _headroom(raw: object) -> Decimal | None:
    # Optional: absent (or null) means the account has no rule set (spec/sizing.md). Zero or less is a
    # `no_headroom` rejection, not a file error.
    return None if raw is None else _number(raw, "account.headroom")


def _config(raw: object) -> SizingConfig:
    if raw is None:
        return SizingConfig()
    section = expect_object(raw, "config")
    for key in section:
        if key not in _CONFIG_KEYS:
            raise CaseFileError(f"config.{key}: unknown setting (known: {', '.join(_CONFIG_KEYS)})")
    default = SizingConfig()
    values: dict[str, Any] = {}
    for key in ("risk_percent", "margin_buffer_percent"):
        values[key] = _number(section[key], f"config.{key}") if key in section else getattr(default, key)
    if "entry_splits" in section:
        splits = expect_array(section["entry_splits"], "config.entry_splits")
        values["entry_splits"] = tuple(
            _number(part, f"config.entry_splits[{index}]") for index, part in enumerate(splits)
        )
    else:
        values["entry_splits"] = default.entry_splits
    age: object = default.max_snapshot_age_seconds
    if "max_snapshot_age_seconds" in section:
        age = _number(section["max_snapshot_age_seconds"], "config.max_snapshot_age_seconds")
        # A whole number becomes an int; a fraction stays a Decimal so the range check names it.
        age = int(age) if age == age.to_integral_value() else age
    values["max_snapshot_age_seconds"] = age
    errors = validate_sizing_config(**values)
    if errors:
        raise CaseFileError("; ".join(f"config.{key}: {message}" for key, message in errors.items()))
    return SizingConfig(**values)


def _symbol(raw: object) -> SymbolTerms:
    section = expect_object(raw, "symbol")
    numbers = {key: _number(required(section, key, "symbol"), f"symbol.{key}") for key in _SYMBOL_NUMBERS}
    symbol = SymbolTerms(
        name=_text(required(section, "name", "symbol"), "symbol.name"),
        digits=_integer(required(section, "digits", "symbol"), "symbol.digits", minimum=0),
        **numbers,
    )
    errors = validate_symbol_terms(symbol=symbol)
    if errors:
        raise CaseFileError(
            "; ".join(
                f"symbol.{key}: {message} (got {describe(section[key])})" for key, message in errors.items()
            )
        )
    return symbol


def _setup(raw: object) -> Setup:
    section = expect_object(raw, "setup")
    side = required(section, "side", "setup")
    if not isinstance(side, str):
        raise case_error("setup.side", "must be a string", side)
    entries = expect_array(required(section, "entries", "setup"), "setup.entries")
    return Setup(
        side=side,
        entries=tuple(_number(price, f"setup.entries[{index}]") for index, price in enumerate(entries)),
        sl=_number(required(section, "sl", "setup"), "setup.sl"),
    )


def parse_case(source: str | bytes | Mapping[str, Any]) -> SizeCase:
    """Read a case from JSON text or an already-decoded mapping; raise `CaseFileError` naming the bad path."""
    raw = dict(source) if isinstance(source, Mapping) else load_json(source)
    top = expect_object(raw, "top level")
    if "case" in top and "account" not in top:
        top = expect_object(top["case"], "case")
    return SizeCase(
        account=_account(required(top, "account", "")),
        config=_config(top.get("config")),
        symbol=_symbol(required(top, "symbol", "")),
        setup=_setup(required(top, "setup", "")),
    )
