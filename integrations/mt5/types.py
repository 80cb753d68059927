"""Our own frozen types for what the terminal reports: Decimal prices and money, aware datetimes.

Every timestamp is kept twice: `time` is the instant in UTC; `server_time` is the same instant in the broker's
server clock (a fixed-offset tz), because MT5 epoch numbers are the trade server's wall clock and the broker day
(daily-loss anchor) follows it.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class MarginMode(StrEnum):
    NETTING = "netting"
    EXCHANGE = "exchange"
    HEDGING = "hedging"


@dataclass(frozen=True, slots=True)
class AccountState:
    login: int
    server: str
    company: str
    name: str
    currency: str
    currency_digits: int
    leverage: int
    margin_mode: MarginMode
    trade_allowed: bool
    trade_expert: bool
    balance: Decimal
    credit: Decimal
    profit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal
    margin_so_call: Decimal
    margin_so_so: Decimal
    time: datetime
    server_time: datetime
    # False while the broker's UTC offset is not known yet: server_time is then shown at UTC, which is a guess, and
    # nothing that depends on the broker's day (the daily-loss anchor) may trust it.
    server_utc_offset_known: bool = True


@dataclass(frozen=True, slots=True)
class TerminalState:
    connected: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    build: int
    ping_ms: Decimal
    company: str
    name: str


@dataclass(frozen=True, slots=True)
class Position:
    ticket: int
    identifier: int
    symbol: str
    side: Side
    volume: Decimal
    price_open: Decimal
    price_current: Decimal
    sl: Decimal | None
    tp: Decimal | None
    swap: Decimal
    profit: Decimal
    magic: int
    comment: str
    reason: int
    time: datetime
    server_time: datetime
    time_epoch: int  # the raw server-clock epoch seconds, for tie-breaking exactly as the terminal orders


@dataclass(frozen=True, slots=True)
class Deal:
    ticket: int
    order: int
    position_id: int
    symbol: str
    type: int
    entry: int
    reason: int
    volume: Decimal
    price: Decimal
    commission: Decimal
    swap: Decimal
    profit: Decimal
    fee: Decimal
    magic: int
    comment: str
    time: datetime
    server_time: datetime
    time_epoch: int
    time_msc: int


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    name: str
    description: str
    digits: int
    point: Decimal
    trade_tick_size: Decimal
    trade_tick_value: Decimal
    trade_contract_size: Decimal
    volume_min: Decimal
    volume_max: Decimal
    volume_step: Decimal
    trade_stops_level: int
    trade_freeze_level: int
    trade_mode: int
    trade_exemode: int
    trade_calc_mode: int
    filling_mode: int
    currency_base: str
    currency_profit: str
    currency_margin: str
    spread: int


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    time: datetime
    server_time: datetime
    time_msc: int

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid


@dataclass(frozen=True, slots=True)
class Bar:
    time: datetime
    server_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    tick_volume: int
    spread: int


@dataclass(frozen=True, slots=True)
class TradeRequest:
    """A market request. Closing requests always carry `position` (on hedging accounts a close without it opens
    a new opposite position) and our magic number."""

    action: int
    symbol: str
    volume: Decimal
    type: int
    price: Decimal
    deviation: int
    magic: int
    comment: str
    type_filling: int
    type_time: int = 0
    position: int = 0
    sl: Decimal | None = None
    tp: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderResult:
    retcode: int
    comment: str
    deal: int
    order: int
    volume: Decimal
    price: Decimal
    bid: Decimal
    ask: Decimal
    request_id: int
    retcode_external: int


@dataclass(frozen=True, slots=True)
class OrderCheck:
    retcode: int
    comment: str
    balance: Decimal
    equity: Decimal
    profit: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal


@dataclass(frozen=True, slots=True)
class Health:
    """What the pages show per account: is the link up and may we trade."""

    connected: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    ping_ms: Decimal | None
    newest_tick_age_seconds: Decimal | None
    probe_latency_ms: Decimal
    checked_at: datetime
    error: str = ""
    server_utc_offset: int | None = None  # seconds east of UTC of the broker's clock; None while unknown
    server_utc_offset_source: str = ""  # configured | estimated | unknown
    server_utc_offset_measured_at: datetime | None = None  # when an estimate was last confirmed
