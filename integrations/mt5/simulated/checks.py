"""Trade-request parsing (local argument errors) and the trade server's per-field checks (retcodes).

`parse_request(dict)` mirrors the module's own argument checks: a dict is required, every known key must have the
right Python type (`'Invalid "volume" argument'` otherwise; `volume` must be a float, ints are refused, REFERENCE
§8/§15), missing keys default to 0 / "", unknown keys are ignored, comments are cut to 31 characters.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from integrations.mt5 import constants as c
from integrations.mt5.simulated.catalogue import SymbolSpec
from integrations.mt5.simulated.errors import INVALID_ARGUMENTS, ApiError, TradeReject, invalid_argument
from integrations.mt5.structs import TradeRequest

_INT_FIELDS = (
    "action",
    "magic",
    "order",
    "deviation",
    "type",
    "type_filling",
    "type_time",
    "position",
    "position_by",
)
_PRICE_FIELDS = ("price", "stoplimit", "sl", "tp")
MAX_COMMENT = 31
ZERO = Decimal(0)


def to_epoch(value: Any, name: str) -> int:
    """Epoch seconds from an int or a datetime (aware: its instant; naive: read as UTC)."""
    if isinstance(value, bool):
        raise ApiError(invalid_argument(name))
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            from calendar import timegm

            return timegm(value.timetuple())
        return int(value.timestamp())
    raise ApiError(invalid_argument(name))


def parse_request(request: Any) -> TradeRequest:
    if not isinstance(request, Mapping):
        raise ApiError(INVALID_ARGUMENTS)
    values: dict[str, Any] = {}
    for name in _INT_FIELDS:
        value = request.get(name, 0)
        if not isinstance(value, int):
            raise ApiError(invalid_argument(name))
        values[name] = int(value)
    volume = request.get("volume", 0.0)
    if not isinstance(volume, float):
        raise ApiError(invalid_argument("volume"))
    values["volume"] = volume
    for name in _PRICE_FIELDS:
        value = request.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(invalid_argument(name))
        values[name] = float(value)
    for name in ("symbol", "comment"):
        value = request.get(name, "")
        if not isinstance(value, str):
            raise ApiError(invalid_argument(name))
        values[name] = value
    values["comment"] = values["comment"][:MAX_COMMENT]
    values["expiration"] = to_epoch(request.get("expiration", 0), "expiration")
    return TradeRequest.from_dict(values)  # type: ignore[attr-defined,no-any-return]


# --- server-side field checks ----------------------------------------------------------------------------------


def price_decimal(spec: SymbolSpec, value: float, retcode: int) -> Decimal:
    """A request price as Decimal on the symbol's tick grid, or TradeReject(retcode)."""
    if value == 0:
        return ZERO
    scaled = value * 10**spec.digits
    points = round(scaled)
    if value < 0 or abs(scaled - points) > 1e-6 * max(1.0, abs(scaled)) or points % spec.tick_points:
        raise TradeReject(retcode)
    return spec.from_points(points)


def check_volume(spec: SymbolSpec, volume: float) -> Decimal:
    lots = Decimal(repr(volume))
    if lots <= 0 or lots < spec.volume_min or lots > spec.volume_max or lots % spec.volume_step != 0:
        raise TradeReject(c.TRADE_RETCODE_INVALID_VOLUME)
    return lots


def check_trade_mode(spec: SymbolSpec, *, is_buy: bool, opening: bool) -> None:
    mode = spec.trade_mode
    if mode == c.SYMBOL_TRADE_MODE_DISABLED:
        raise TradeReject(c.TRADE_RETCODE_TRADE_DISABLED)
    if not opening:
        return
    if mode == c.SYMBOL_TRADE_MODE_CLOSEONLY:
        raise TradeReject(c.TRADE_RETCODE_CLOSE_ONLY)
    if mode == c.SYMBOL_TRADE_MODE_LONGONLY and not is_buy:
        raise TradeReject(c.TRADE_RETCODE_LONG_ONLY)
    if mode == c.SYMBOL_TRADE_MODE_SHORTONLY and is_buy:
        raise TradeReject(c.TRADE_RETCODE_SHORT_ONLY)


def executed_filling(spec: SymbolSpec, type_filling: int) -> int:
    """The filling a market order executes with, or 10030 when the symbol does not allow the requested one.

    Instant/Request execution fills FOK whatever is sent (BOC excepted); Market execution needs the symbol's flag
    (FOK 1, IOC 2) and refuses RETURN; Exchange execution also accepts RETURN.
    """
    exemode = spec.exemode
    if type_filling not in (c.ORDER_FILLING_FOK, c.ORDER_FILLING_IOC, c.ORDER_FILLING_RETURN):
        raise TradeReject(c.TRADE_RETCODE_INVALID_FILL)
    if exemode in (c.SYMBOL_TRADE_EXECUTION_INSTANT, c.SYMBOL_TRADE_EXECUTION_REQUEST):
        return c.ORDER_FILLING_FOK
    if type_filling == c.ORDER_FILLING_RETURN:
        if exemode == c.SYMBOL_TRADE_EXECUTION_EXCHANGE:
            return type_filling
        raise TradeReject(c.TRADE_RETCODE_INVALID_FILL)
    flag = 1 if type_filling == c.ORDER_FILLING_FOK else 2
    if not spec.filling_mode & flag:
        raise TradeReject(c.TRADE_RETCODE_INVALID_FILL)
    return type_filling


def check_stops(spec: SymbolSpec, *, is_buy: bool, reference: Decimal, sl: Decimal, tp: Decimal) -> None:
    """SL/TP against the price a position of that side closes at (bid for buys, ask for sells) and stops level.

    For a buy `reference` is the bid (or a pending order's price), for a sell the ask.
    """
    distance = spec.point * spec.stops_level
    if is_buy:
        bad_sl = sl > 0 and (sl >= reference or sl > reference - distance)
        bad_tp = tp > 0 and (tp <= reference or tp < reference + distance)
    else:
        bad_sl = sl > 0 and (sl <= reference or sl < reference + distance)
        bad_tp = tp > 0 and (tp >= reference or tp > reference - distance)
    if bad_sl or bad_tp:
        raise TradeReject(c.TRADE_RETCODE_INVALID_STOPS)


def check_requested_price(spec: SymbolSpec, *, requested: Decimal, market: Decimal, deviation: int) -> None:
    """Instant/Request execution: the price must be given and within `deviation` points of the market."""
    if spec.exemode not in (c.SYMBOL_TRADE_EXECUTION_INSTANT, c.SYMBOL_TRADE_EXECUTION_REQUEST):
        return
    if requested <= 0:
        raise TradeReject(c.TRADE_RETCODE_INVALID_PRICE)
    if abs(requested - market) > spec.point * max(deviation, 0):
        if spec.exemode == c.SYMBOL_TRADE_EXECUTION_INSTANT:
            raise TradeReject(c.TRADE_RETCODE_REQUOTE)
        raise TradeReject(c.TRADE_RETCODE_PRICE_CHANGED)
