"""The result types of the official `MetaTrader5` module (5.0.6231), field for field.

The real ones are C `PyStructSequence` types (`mt5.TradePosition`, `mt5.AccountInfo`, ...) with an added `_asdict()`:
tuples with attribute access, index access and `_asdict()`. Field names and order here are exactly those of
shared/mt5/REFERENCE.md §2-8 (read from the 5.0.6231 binary).

Built on `typing.NamedTuple` for exact, typed fields, then *sealed*: `_replace`, `_make`, `_fields` and
`_field_defaults` are removed, because the real objects do not have them; code that works against these works
against the real module. Use `field_names(cls)` instead of `_fields`, and `Cls.from_dict(d)` to rebuild one from a
plain dict (the bridge client sends `_asdict()` dicts over the wire; nested `request` dicts become `TradeRequest`).

Single deviation: rates. The real `copy_rates_*` return a numpy structured array with `RATES_DTYPE_FIELDS`. numpy is
not a dependency, so they return a tuple of `Rate` records instead (oldest first). A `Rate` is a tuple with index,
attribute and *name* access (`r[4]`, `r.close`, `r["close"]`), which covers how numpy rows are normally read
(`row["close"]`, `row[4]`, `tuple(row)`); column access on the whole array (`rates["close"]`) is not available.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar, get_type_hints


class AccountInfo(NamedTuple):
    """Account information, as returned by account_info(). 28 fields, official order."""

    login: int
    trade_mode: int
    leverage: int
    limit_orders: int
    margin_so_mode: int
    trade_allowed: bool
    trade_expert: bool
    margin_mode: int
    currency_digits: int
    fifo_close: bool
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    margin_so_call: float
    margin_so_so: float
    margin_initial: float
    margin_maintenance: float
    assets: float
    liabilities: float
    commission_blocked: float
    name: str
    server: str
    currency: str
    company: str


class TerminalInfo(NamedTuple):
    """Terminal state and settings, as returned by terminal_info(). 22 fields, official order."""

    community_account: bool
    community_connection: bool
    connected: bool
    dlls_allowed: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    email_enabled: bool
    ftp_enabled: bool
    notifications_enabled: bool
    mqid: bool
    build: int
    maxbars: int
    codepage: int
    ping_last: int
    community_balance: float
    retransmission: float
    company: str
    name: str
    language: str
    path: str
    data_path: str
    commondata_path: str


class TradePosition(NamedTuple):
    """An open position, as returned by positions_get(). 19 fields, official order."""

    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


class TradeOrder(NamedTuple):
    """An active or historical order (orders_get / history_orders_get). 24 fields, official order."""

    ticket: int
    time_setup: int
    time_setup_msc: int
    time_done: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    external_id: str


class TradeDeal(NamedTuple):
    """A deal in the history (history_deals_get). 18 fields, official order."""

    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str


class SymbolInfo(NamedTuple):
    """Symbol specification and latest prices (symbol_info / symbols_get). 96 fields, official order."""

    custom: bool
    chart_mode: int
    select: bool
    visible: bool
    session_deals: int
    session_buy_orders: int
    session_sell_orders: int
    volume: int
    volumehigh: int
    volumelow: int
    time: int
    digits: int
    spread: int
    spread_float: bool
    ticks_bookdepth: int
    trade_calc_mode: int
    trade_mode: int
    start_time: int
    expiration_time: int
    trade_stops_level: int
    trade_freeze_level: int
    trade_exemode: int
    swap_mode: int
    swap_rollover3days: int
    margin_hedged_use_leg: bool
    expiration_mode: int
    filling_mode: int
    order_mode: int
    order_gtc_mode: int
    option_mode: int
    option_right: int
    bid: float
    bidhigh: float
    bidlow: float
    ask: float
    askhigh: float
    asklow: float
    last: float
    lasthigh: float
    lastlow: float
    volume_real: float
    volumehigh_real: float
    volumelow_real: float
    option_strike: float
    point: float
    trade_tick_value: float
    trade_tick_value_profit: float
    trade_tick_value_loss: float
    trade_tick_size: float
    trade_contract_size: float
    trade_accrued_interest: float
    trade_face_value: float
    trade_liquidity_rate: float
    volume_min: float
    volume_max: float
    volume_step: float
    volume_limit: float
    swap_long: float
    swap_short: float
    margin_initial: float
    margin_maintenance: float
    session_volume: float
    session_turnover: float
    session_interest: float
    session_buy_orders_volume: float
    session_sell_orders_volume: float
    session_open: float
    session_close: float
    session_aw: float
    session_price_settlement: float
    session_price_limit_min: float
    session_price_limit_max: float
    margin_hedged: float
    price_change: float
    price_volatility: float
    price_theoretical: float
    price_greeks_delta: float
    price_greeks_theta: float
    price_greeks_gamma: float
    price_greeks_vega: float
    price_greeks_rho: float
    price_greeks_omega: float
    price_sensitivity: float
    basis: str
    category: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    bank: str
    description: str
    exchange: str
    formula: str
    isin: str
    name: str
    page: str
    path: str


class Tick(NamedTuple):
    """Latest prices of a symbol (symbol_info_tick). 8 fields, official order."""

    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TradeRequest(NamedTuple):
    """A trade request as echoed in OrderCheckResult / OrderSendResult. 17 fields, official order."""

    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


class OrderCheckResult(NamedTuple):
    """Result of order_check(); success is retcode 0 ('Done'). 9 fields, official order."""

    retcode: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float
    comment: str
    request: TradeRequest


class OrderSendResult(NamedTuple):
    """Result of order_send(); market success is retcode 10009 ('Request executed'). 11 fields, official order."""

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequest


class BookInfo(NamedTuple):
    """One depth-of-market level (market_book_get). 4 fields, official order."""

    type: int
    price: float
    volume: int
    volume_dbl: float


class Rate(NamedTuple):
    """One bar of copy_rates_* (deviation: a record instead of a numpy structured-array row; see module doc)."""

    time: int
    open: float
    high: float
    low: float
    close: float
    tick_volume: int
    spread: int
    real_volume: int

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            if key not in _RATE_FIELDS:
                raise ValueError(f"no field of name {key}")
            return getattr(self, key)
        return tuple.__getitem__(self, key)


# The numpy dtype of the real copy_rates_* arrays (REFERENCE §6), for whoever needs to build one.
RATES_DTYPE_FIELDS: tuple[tuple[str, str], ...] = (
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
)
_RATE_FIELDS = frozenset(name for name, _ in RATES_DTYPE_FIELDS)

STRUCT_TYPES: dict[str, type[tuple[Any, ...]]] = {
    cls.__name__: cls
    for cls in (
        AccountInfo,
        TerminalInfo,
        TradePosition,
        TradeOrder,
        TradeDeal,
        SymbolInfo,
        Tick,
        TradeRequest,
        OrderCheckResult,
        OrderSendResult,
        BookInfo,
        Rate,
    )
}

_FIELDS: dict[type, tuple[str, ...]] = {}
_HINTS: dict[type, dict[str, Any]] = {}

S = TypeVar("S", bound=tuple[Any, ...])


def field_names(struct: Any) -> tuple[str, ...]:
    """Field names of a struct type or instance, in order (the public replacement for `_fields`)."""
    cls = struct if isinstance(struct, type) else type(struct)
    return _FIELDS[cls]


def _coerce(kind: Any, value: Any) -> Any:
    if kind is bool:
        return bool(value)
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    if kind is str:
        return "" if value is None else str(value)
    if isinstance(kind, type) and kind in _FIELDS:
        return value if isinstance(value, kind) else _from_dict(kind, value)
    return value


def _from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
    names = _FIELDS[cls]
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"{cls.__name__}.from_dict: missing fields {missing}")
    hints = _HINTS[cls]
    return cls(*(_coerce(hints[name], data[name]) for name in names))


def struct_from_dict(type_name: str, data: Mapping[str, Any]) -> tuple[Any, ...]:
    """Rebuild a struct by type name ("TradePosition", ...) from a plain dict; unknown keys are ignored."""
    return _from_dict(STRUCT_TYPES[type_name], data)


def _asdict(self: tuple[Any, ...]) -> dict[str, Any]:
    """Convert named tuple object to dictionary (shallow, like the real one: `request` stays a TradeRequest)."""
    return dict(zip(_FIELDS[type(self)], self, strict=True))


def _seal(cls: type) -> None:
    _FIELDS[cls] = tuple(cls._fields)  # type: ignore[attr-defined]
    _HINTS[cls] = get_type_hints(cls)
    for attr in ("_replace", "_make", "_field_defaults", "_fields"):
        if attr in cls.__dict__:
            delattr(cls, attr)
    cls._asdict = _asdict  # type: ignore[attr-defined]
    cls.from_dict = classmethod(_from_dict)  # type: ignore[attr-defined]


for _cls in STRUCT_TYPES.values():
    _seal(_cls)
