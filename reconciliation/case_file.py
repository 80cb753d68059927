"""Parse and validate a reconciliation case file (shared/spec/reconciliation.md, "The case file").

Pure: no Django. Every error is a `CaseFileError` whose message starts with the JSON path of the bad value,
e.g. `bot_trades[2].volume: must be a positive number (got 0)`.

Decisions where the spec is silent:
- Required: symbols, bot_trades, positions; per symbol digits and point; per bot trade id, symbol, side,
  volume, entry_price; per position ticket, time, type, volume, price_open, symbol; per deal ticket, time,
  entry, position_id, reason. Other known fields default to "none" (null sl/tp/ticket/magic/tag, magic 0,
  comment ""). Unknown fields are ignored, except inside `tolerances`, where a misspelt key would silently
  test the default instead of the setting being tried.
- Integer fields (tickets, time, type, magic, digits) take JSON integers or strings of digits.
- Bot-trade ids and position tickets must be unique: the result names them.
- A file shaped like shared/cases/*.json ({"case": {...}, "expected": ...}) is read through its "case".
- `margin_mode` is exactly "hedging" or "netting" (null counts as absent: hedging); anything else, including
  MT5's "exchange" or other spellings, is refused rather than guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from core.casefiles import CaseFileError, case_error, describe
from reconciliation.matching import (
    MARGIN_MODES,
    BotTrade,
    Deal,
    LivePosition,
    MarginMode,
    ReconciliationResult,
    Side,
    SymbolSpec,
    SymbolTable,
    Tolerances,
    UnknownSymbolError,
    reconcile,
)

T = TypeVar("T")

_TOLERANCE_KEYS = (
    "match_volume_percent",
    "match_entry_pips",
    "slippage_pips",
    "volume_mismatch_percent",
    "sltp_pips",
)


@dataclass(frozen=True, slots=True)
class Case:
    symbols: SymbolTable
    bot_trades: tuple[BotTrade, ...]
    positions: tuple[LivePosition, ...]
    deals: tuple[Deal, ...]
    tolerances: Tolerances
    margin_mode: MarginMode = "hedging"

    def reconcile(self) -> ReconciliationResult:
        return reconcile(
            symbols=self.symbols,
            bot_trades=self.bot_trades,
            positions=self.positions,
            deals=self.deals,
            tolerances=self.tolerances,
            margin_mode=self.margin_mode,
        )


# ---------------------------------------------------------------- scalar readers


def _number(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise case_error(path, "must be a number", value)
    try:
        # str() of a float is its shortest repr, so 0.1 becomes Decimal("0.1"), not the binary value.
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise case_error(path, "must be a number", value) from None
    if not number.is_finite():
        raise case_error(path, "must be a finite number", value)
    return number


def _positive(value: object, path: str) -> Decimal:
    try:
        number = _number(value, path)
    except CaseFileError:
        raise case_error(path, "must be a positive number", value) from None
    if number <= 0:
        raise case_error(path, "must be a positive number", value)
    return number


def _non_negative(value: object, path: str) -> Decimal:
    try:
        number = _number(value, path)
    except CaseFileError:
        raise case_error(path, "must be a non-negative number", value) from None
    if number < 0:
        raise case_error(path, "must be a non-negative number", value)
    return number


def _level(value: object, path: str) -> Decimal | None:
    """An SL or TP price: null or 0 mean none."""
    return None if value is None else _non_negative(value, path)


def _integer(value: object, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise case_error(path, "must be an integer", value)
    if number < minimum:
        raise case_error(path, f"must be an integer >= {minimum}", value)
    return number


def _text(value: object, path: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or (not allow_empty and not value):
        raise case_error(path, "must be a string" if allow_empty else "must be a non-empty string", value)
    return value


def _object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise case_error(path, "must be an object", value)
    return value


def _array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise case_error(path, "must be an array", value)
    return value


class _Fields:
    """Field access on one JSON object, with its path for messages."""

    __slots__ = ("data", "path")

    def __init__(self, data: object, path: str) -> None:
        self.data = _object(data, path)
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def required(self, key: str, read: Callable[[object, str], T]) -> T:
        if key not in self.data:
            raise CaseFileError(f"{self.at(key)}: is required")
        return read(self.data[key], self.at(key))

    def optional(self, key: str, read: Callable[[object, str], T], default: T) -> T:
        value = self.data.get(key)
        return default if value is None else read(value, self.at(key))


# ---------------------------------------------------------------- sections


def _symbols(value: object, path: str) -> SymbolTable:
    table: dict[str, SymbolSpec] = {}
    for name, entry in _object(value, path).items():
        if not name:
            raise CaseFileError(f"{path}: symbol names must be non-empty")
        fields = _Fields(entry, f"{path}.{name}")
        table[name] = SymbolSpec(
            name=name,
            digits=fields.required("digits", _integer),
            point=fields.required("point", _positive),
            canonical=fields.optional("canonical", lambda v, p: _text(v, p, allow_empty=False), ""),
            pip=fields.optional("pip", _positive, None),
        )
    return SymbolTable(table)


def _tolerances(value: object, path: str) -> Tolerances:
    data = _object(value, path)
    for key in data:
        if key not in _TOLERANCE_KEYS:
            raise CaseFileError(f"{path}.{key}: unknown tolerance (known: {', '.join(_TOLERANCE_KEYS)})")
    fields = _Fields(data, path)
    defaults = Tolerances()
    return Tolerances(
        **{key: fields.optional(key, _non_negative, getattr(defaults, key)) for key in _TOLERANCE_KEYS}
    )


def _margin_mode(value: object, path: str) -> MarginMode:
    for mode in MARGIN_MODES:
        if value == mode:
            return mode
    raise case_error(path, f"must be {' or '.join(json.dumps(mode) for mode in MARGIN_MODES)}", value)


def _side(value: object, path: str) -> Side:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise case_error(path, 'must be "buy" or "sell"', value)


def _canonical(table: SymbolTable) -> Callable[[object, str], str]:
    def read(value: object, path: str) -> str:
        name = _text(value, path, allow_empty=False)
        try:
            table.canonical_key(name)
        except UnknownSymbolError:
            raise case_error(
                path, "unknown symbol: no entry in symbols has this canonical name", value
            ) from None
        return name

    return read


def _terminal(table: SymbolTable) -> Callable[[object, str], str]:
    def read(value: object, path: str) -> str:
        name = _text(value, path, allow_empty=False)
        if name not in table:
            raise case_error(path, "unknown symbol: not in symbols", value)
        return name

    return read


def _bot_trade(value: object, path: str, *, table: SymbolTable) -> BotTrade:
    fields = _Fields(value, path)
    return BotTrade(
        id=fields.required("id", lambda v, p: _text(v, p, allow_empty=False)),
        symbol=fields.required("symbol", _canonical(table)),
        side=fields.required("side", _side),
        volume=fields.required("volume", _positive),
        entry_price=fields.required("entry_price", _positive),
        sl=fields.optional("sl", _level, None),
        tp=fields.optional("tp", _level, None),
        ticket=fields.optional("ticket", lambda v, p: _integer(v, p, minimum=1), None),
        magic=fields.optional("magic", _integer, None),
        tag=fields.optional("tag", _text, None),
    )


def _position_type(value: object, path: str) -> int:
    number = _integer(value, path)
    if number not in (0, 1):
        raise case_error(path, "must be 0 (buy) or 1 (sell)", value)
    return number


def _position(value: object, path: str, *, table: SymbolTable) -> LivePosition:
    fields = _Fields(value, path)
    return LivePosition(
        ticket=fields.required("ticket", lambda v, p: _integer(v, p, minimum=1)),
        time=fields.required("time", _integer),
        type=fields.required("type", _position_type),
        magic=fields.optional("magic", _integer, 0),
        volume=fields.required("volume", _positive),
        price_open=fields.required("price_open", _positive),
        sl=fields.optional("sl", _level, None),
        tp=fields.optional("tp", _level, None),
        symbol=fields.required("symbol", _terminal(table)),
        comment=fields.optional("comment", _text, ""),
    )


def _deal(value: object, path: str) -> Deal:
    fields = _Fields(value, path)
    return Deal(
        ticket=fields.required("ticket", _integer),
        order=fields.optional("order", _integer, 0),
        time=fields.required("time", _integer),
        type=fields.optional("type", _integer, 0),
        entry=fields.required("entry", _integer),
        magic=fields.optional("magic", _integer, 0),
        position_id=fields.required("position_id", _integer),
        reason=fields.required("reason", _integer),
        volume=fields.optional("volume", _non_negative, Decimal(0)),
        price=fields.optional("price", _non_negative, Decimal(0)),
        symbol=fields.optional("symbol", _text, ""),
        comment=fields.optional("comment", _text, ""),
    )


def _reject_constant(name: str) -> None:
    raise CaseFileError(f"malformed JSON: {name} is not a number JSON allows")


def _load(source: str | bytes) -> object:
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CaseFileError(f"not UTF-8 text: {exc}") from None
    try:
        # parse_float=Decimal keeps the literal digits exactly ("1e-05" -> Decimal("0.00001")).
        return json.loads(source, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CaseFileError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_case(source: str | bytes | Mapping[str, Any]) -> Case:
    """Validate a case (JSON text, or the already-loaded object) into the matcher's inputs."""
    data = _load(source) if isinstance(source, str | bytes) else source
    root = _object(data, "case file")
    prefix = ""
    if "symbols" not in root and isinstance(root.get("case"), dict):
        root, prefix = root["case"], "case"
    fields = _Fields(root, prefix)

    margin_mode = fields.optional("margin_mode", _margin_mode, "hedging")
    table = fields.required("symbols", _symbols)
    trades = tuple(
        _bot_trade(item, f"{fields.at('bot_trades')}[{i}]", table=table)
        for i, item in enumerate(fields.required("bot_trades", _array))
    )
    positions = tuple(
        _position(item, f"{fields.at('positions')}[{i}]", table=table)
        for i, item in enumerate(fields.required("positions", _array))
    )
    no_deals: list[Any] = []
    deals = tuple(
        _deal(item, f"{fields.at('deals')}[{i}]")
        for i, item in enumerate(fields.optional("deals", _array, no_deals))
    )
    tolerances = fields.optional("tolerances", _tolerances, Tolerances())
    _check_unique([trade.id for trade in trades], fields.at("bot_trades"), "id")
    _check_unique([position.ticket for position in positions], fields.at("positions"), "ticket")
    return Case(
        symbols=table,
        bot_trades=trades,
        positions=positions,
        deals=deals,
        tolerances=tolerances,
        margin_mode=margin_mode,
    )


def _check_unique(values: list[Any], path: str, field: str) -> None:
    first: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value in first:
            raise CaseFileError(
                f"{path}[{index}].{field}: duplicate of {path}[{first[value]}].{field} (got {describe(value)})"
            )
        first[value] = index
