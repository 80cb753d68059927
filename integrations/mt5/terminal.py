"""TerminalGateway: the one adapter from the MetaTrader5 function API to our port (gateway.Mt5Gateway).

`api` is any object exposing the official module's functions (`initialize`, `login`, `account_info`, ...,
`order_send`, `last_error`): the real `MetaTrader5` module, a `SimulatedTerminal`, or a `BridgeClient`. Everything
backend-specific stays in those objects; this class only maps:

* results → our frozen types: floats become `Decimal(str(x))`, prices quantized to the symbol's `digits`, money to
  the account's `currency_digits`; MT5 epoch numbers (the trade server's wall clock, REFERENCE §10) become an aware
  UTC `time` plus the same instant in the broker's fixed-offset zone (`server_time`); sl/tp 0.0 become None;
* failures → the errors.py taxonomy, from `None`/`False` + `last_error()` (REFERENCE §1), including `SystemError`
  raised by the C extension.

The server UTC offset is either configured or estimated per REFERENCE §10 from a fresh tick, rounded to whole
quarter-hours: `round((tick.time_msc / 1000 - now) / 900) * 900`. A tick's age cannot be read from its time (that is
what the offset is needed for), so a tick counts as fresh only when it is *seen to arrive*: a symbol read twice at
most 60 s apart whose newest tick changed in between holds a tick younger than 60 s. Only the symbols the account
trades are probed, by their terminal names (the broker's suffix included): held positions, pending orders, recent
deals and symbols read through this gateway. Estimates are confirmed on every fresh tick seen (DST moves them) and
re-probed when the last confirmation is older than a day; configured offsets never change. While the offset is
unknown, times are shown at UTC but flagged (`AccountState.server_utc_offset_known`, `Health`), never silently
trusted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time as _time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from integrations.mt5.constants import (
    ACCOUNT_STOPOUT_MODE_PERCENT,
    ORDER_TYPE_BUY,
    ORDER_TYPE_SELL,
    POSITION_TYPE_BUY,
    RES_E_AUTH_FAILED,
    RES_E_AUTO_TRADING_DISABLED,
    RES_E_FAIL,
    RES_E_INTERNAL_FAIL,
    RES_E_INTERNAL_FAIL_CONNECT,
    RES_E_INTERNAL_FAIL_INIT,
    RES_E_INTERNAL_FAIL_RECEIVE,
    RES_E_INTERNAL_FAIL_SEND,
    RES_E_INTERNAL_FAIL_TIMEOUT,
    RES_E_INVALID_PARAMS,
    RES_E_INVALID_VERSION,
    RES_E_NO_MEMORY,
    RES_E_NOT_FOUND,
    RES_E_UNSUPPORTED,
    RES_S_OK,
    TRADE_ACTION_SLTP,
)
from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayError,
    GatewayInvalidRequest,
    GatewayTimeout,
    GatewayTradingDisabled,
    GatewayUnavailable,
    GatewayVersionMismatch,
)
from integrations.mt5.types import (
    AccountState,
    Bar,
    Deal,
    Health,
    MarginMode,
    OrderCheck,
    OrderResult,
    Position,
    Side,
    SymbolSpec,
    TerminalState,
    Tick,
    TradeRequest,
)

logger = logging.getLogger(__name__)

# The widest offsets of a trade server's clock from UTC (UTC-12 ... UTC+14), in seconds.
UNKNOWN_OFFSET_BEHIND = 12 * 3600
UNKNOWN_OFFSET_AHEAD = 14 * 3600

_MARGIN_MODES = {0: MarginMode.NETTING, 1: MarginMode.EXCHANGE, 2: MarginMode.HEDGING}

# The *_get functions: "nothing matched" is an empty tuple; None with (1, -4) is treated the same (REFERENCE §1).
_GET_CALLS = frozenset(
    {"positions_get", "orders_get", "history_deals_get", "history_orders_get", "symbols_get"}
)
_SYMBOL_CALLS = frozenset({"symbol_info", "symbol_info_tick"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSET_STEP = 900  # broker offsets are whole quarter-hours (UTC+5:45 exists)
_MAX_OFFSET = 14 * 3600
_FRESH_TICK_SECONDS = 60  # a tick seen to arrive within this long is fresh enough to estimate from
_OFFSET_RECHECK_SECONDS = 86_400  # an estimate not confirmed for a day is probed again
_OFFSET_PROBE_SYMBOLS = 8


def error_for(code: int | None, description: str, *, call: str) -> GatewayError:
    """The typed error for a failed call, from MT5's last_error() (REFERENCE §1 table)."""
    if code in (RES_E_INTERNAL_FAIL_TIMEOUT,):
        return GatewayTimeout(
            "terminal did not answer in time", code=code, description=description, call=call
        )
    if code in (
        RES_E_INTERNAL_FAIL,
        RES_E_INTERNAL_FAIL_SEND,
        RES_E_INTERNAL_FAIL_RECEIVE,
        RES_E_INTERNAL_FAIL_INIT,
        RES_E_INTERNAL_FAIL_CONNECT,
        RES_E_NO_MEMORY,
    ):
        return GatewayUnavailable("no link to the terminal", code=code, description=description, call=call)
    if code == RES_E_AUTH_FAILED:
        return GatewayAuthFailed(
            "the terminal refused the login", code=code, description=description, call=call
        )
    if code in (RES_E_INVALID_PARAMS, RES_E_FAIL, RES_E_NOT_FOUND, RES_E_UNSUPPORTED):
        return GatewayInvalidRequest(
            "the terminal rejected the call", code=code, description=description, call=call
        )
    if code == RES_E_AUTO_TRADING_DISABLED:
        return GatewayTradingDisabled(
            "trading through the Python API is disabled in the terminal",
            code=code,
            description=description,
            call=call,
        )
    if code == RES_E_INVALID_VERSION:
        return GatewayVersionMismatch(
            "terminal and Python module versions are incompatible",
            code=code,
            description=description,
            call=call,
        )
    return GatewayError("the terminal returned no result", code=code, description=description, call=call)


# Built once: to_decimal runs for every field of every reading.
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(16)}


def to_decimal(value: float | int | None, places: int | None = None) -> Decimal:
    """`Decimal(str(value))`, quantized to `places` decimals (half-even) when given. None reads as 0."""
    number = Decimal(str(value if value is not None else 0))
    if places is None:
        return number
    quantum = _QUANTA.get(places)
    if quantum is None:
        quantum = Decimal(1).scaleb(-places)
    return number.quantize(quantum, rounding=ROUND_HALF_EVEN)


def elapsed_ms(started: float) -> Decimal:
    """Milliseconds since `started` (a time.perf_counter() reading), to the microsecond."""
    return to_decimal((_time.perf_counter() - started) * 1000, 3)


def ping_ms(ping_last_us: int) -> Decimal:
    """terminal_info().ping_last is in microseconds (REFERENCE §3)."""
    return (Decimal(int(ping_last_us)) / 1000).quantize(Decimal("0.001"))


def failed_health(error: GatewayError, *, started: float, checked_at: datetime) -> Health:
    """The Health of a probe that could not reach the terminal."""
    return Health(
        connected=False,
        trade_allowed=False,
        tradeapi_disabled=False,
        ping_ms=None,
        newest_tick_age_seconds=None,
        probe_latency_ms=elapsed_ms(started),
        checked_at=checked_at,
        error=str(error),
    )


def _places_of(step: float) -> int:
    if not step:
        return 2
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def estimate_offset(server_epoch: float, now: float) -> int | None:
    """REFERENCE §10: the broker offset (whole quarter-hours) from the server-clock time of a tick known to be younger
    than 60 s; None when that time is off the quarter-hour grid by more than 60 s (then the tick was not fresh after
    all, or our own clock is wrong)."""
    diff = server_epoch - now
    offset = round(diff / _OFFSET_STEP) * _OFFSET_STEP
    if abs(diff - offset) > _FRESH_TICK_SECONDS or abs(offset) > _MAX_OFFSET:
        return None
    return int(offset)


class _SymbolMeta:
    __slots__ = ("digits", "volume_places")

    def __init__(self, digits: int | None, volume_places: int | None) -> None:
        self.digits = digits
        self.volume_places = volume_places


class TerminalGateway:
    """Implements Mt5Gateway over one terminal connection. Not pooled, not retried: see sessions.ManagedGateway.

    Calls are serialised through a lock (the official module is a process-wide singleton and not thread-safe in
    practice, REFERENCE §10). The password is kept only for `login` and never appears in repr, logs or errors.
    """

    def __init__(
        self,
        api: Any,
        *,
        login: int,
        password: str,
        server: str,
        path: str | None = None,
        portable: bool = False,
        timeout_ms: int = 60_000,
        server_utc_offset: int | timedelta | None = None,
        probe_symbols: Sequence[str] = (),
        clock: Callable[[], float] = _time.time,
        offset_wait_seconds: float = 1.5,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        self._api = api
        self._login = int(login)
        self.__password = password
        self._server = server
        self._path = path
        self._portable = portable
        self._timeout_ms = int(timeout_ms)
        self._probe_symbols = tuple(probe_symbols)
        self._clock = clock
        self._offset_wait = float(offset_wait_seconds)
        self._sleep = sleep
        self._lock = threading.RLock()
        self._connected = False
        self._currency_digits: int | None = None
        self._symbols: dict[str, _SymbolMeta] = {}
        self._recent_symbols: dict[str, None] = {}
        if isinstance(server_utc_offset, timedelta):
            server_utc_offset = int(server_utc_offset.total_seconds())
        self._offset_configured = server_utc_offset is not None
        self._offset: int | None = server_utc_offset
        self._tz = timezone(timedelta(seconds=server_utc_offset or 0))
        self._offset_measured_at: float | None = (
            None  # gateway clock of the last fresh tick that confirmed it
        )
        self._tick_seen: dict[str, tuple[int, float]] = {}  # symbol -> (newest tick time_msc, when we saw it)
        self._unknown_said = False  # the "offset unknown" warning is logged once, not on every sync
        self._traded: tuple[float, list[str]] | None = (
            None  # (when, symbols) of the last look at what is traded
        )

    def __repr__(self) -> str:
        return (
            f"<TerminalGateway login={self._login} server={self._server!r} api={type(self._api).__name__}"
            f" connected={self._connected}>"
        )

    # ------------------------------------------------------------------ state

    @property
    def login(self) -> int:
        return self._login

    @property
    def server(self) -> str:
        return self._server

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def server_utc_offset(self) -> int | None:
        """Seconds east of UTC of the broker's server clock; None while not yet known (then UTC is assumed)."""
        return self._offset

    @property
    def server_utc_offset_source(self) -> str:
        if self._offset_configured:
            return "configured"
        return "estimated" if self._offset is not None else "unknown"

    @property
    def server_utc_offset_measured_at(self) -> datetime | None:
        """When a fresh tick last confirmed the estimated offset (None when configured or unknown)."""
        if self._offset_measured_at is None:
            return None
        return datetime.fromtimestamp(self._offset_measured_at, tz=UTC)

    # ------------------------------------------------------------------ raw calls

    def _last_error(self) -> tuple[int | None, str]:
        try:
            code, description = self._api.last_error()
        except Exception:  # a broken link can break last_error() itself
            return RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection"
        return int(code), str(description)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call one API function; return its result or raise the mapped GatewayError."""
        function = getattr(self._api, name)
        with self._lock:
            try:
                result = function(*args, **kwargs)
            # The C extension sometimes raises SystemError instead of returning None (REFERENCE §1).
            except SystemError as exc:
                code, description = self._last_error()
                if code == RES_S_OK:
                    raise GatewayError(
                        f"the terminal extension raised SystemError ({exc})", call=name
                    ) from exc
                raise error_for(code, description, call=name) from exc
            if result is None or result is False:
                code, description = self._last_error()
                if name in _GET_CALLS and code in (RES_S_OK, RES_E_NOT_FOUND):
                    return ()
                if name in _SYMBOL_CALLS and code in (RES_S_OK, RES_E_FAIL, RES_E_NOT_FOUND):
                    raise GatewayInvalidRequest(
                        "unknown symbol", code=code, description=description, call=name
                    )
                raise error_for(code, description, call=name)
        return result

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """initialize (path/portable/timeout), login, then verify that the terminal is on *our* account."""
        with self._lock:
            self._connected = False
            try:
                args = (self._path,) if self._path else ()
                self._call("initialize", *args, timeout=self._timeout_ms, portable=self._portable)
                login_kwargs: dict[str, Any] = {"timeout": self._timeout_ms}
                if self.__password:
                    login_kwargs["password"] = self.__password
                if self._server:
                    login_kwargs["server"] = self._server
                self._call("login", self._login, **login_kwargs)
                info = self._call("account_info")
                if int(info.login) != self._login or (
                    self._server and str(info.server).casefold() != self._server.casefold()
                ):
                    raise GatewayAuthFailed("terminal is logged into another account", call="connect")
            except GatewayError:
                self._shutdown_quietly()
                raise
            self._currency_digits = int(info.currency_digits)
            self._connected = True
        logger.info("mt5 terminal connected: login %s on %s", self._login, self._server)
        self._tick_seen.clear()  # observations from before a reconnect prove nothing about freshness
        if self._offset_due():
            self._probe_offset(wait=self._offset_wait)

    def close(self) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            self._shutdown_quietly()
        if was_connected:
            logger.info("mt5 terminal disconnected: login %s on %s", self._login, self._server)

    def _shutdown_quietly(self) -> None:
        try:
            self._api.shutdown()
        except Exception:  # shutdown of a dead link must not mask the original failure
            logger.debug("mt5 shutdown failed for login %s", self._login, exc_info=True)

    # ------------------------------------------------------------------ time

    def _offset_due(self) -> bool:
        if self._offset_configured:
            return False
        if self._offset is None or self._offset_measured_at is None:
            return True
        return self._clock() - self._offset_measured_at > _OFFSET_RECHECK_SECONDS

    def _traded_symbols(self) -> list[str]:
        """Terminal names of the symbols the account trades: held, pending, dealt in the last week, recently read."""
        if self._traded is not None and self._clock() - self._traded[0] < 300:
            return self._traded[1]
        names: dict[str, None] = dict.fromkeys(self._probe_symbols)
        if not names:
            # Held positions come in through _recent_symbols (every positions() read remembers them) and, when
            # opened this week, through their deals: no positions_get of its own on connect.
            now = int(self._clock())
            for call, args in (("orders_get", ()), ("history_deals_get", (now - 8 * 86_400, now + 86_400))):
                if not hasattr(self._api, call):  # an API that does not serve it (the EA push backend)
                    continue
                try:
                    rows = sorted(self._call(call, *args), key=lambda row: -int(getattr(row, "time", 0) or 0))
                except GatewayInvalidRequest:
                    continue
                names.update(dict.fromkeys(str(row.symbol) for row in rows if row.symbol))
            names.update(self._recent_symbols)
        self._traded = (self._clock(), list(names)[:_OFFSET_PROBE_SYMBOLS])
        return self._traded[1]

    def _probe_offset(self, *, wait: float = 0.0) -> None:
        """Read the newest tick of each traded symbol. The estimate comes from a read of a symbol whose tick changed
        since the previous read (see the module docstring): within `wait` seconds of polling (on connect: a live
        market ticks within a second), else from the next sync's reads."""
        deadline = _time.monotonic() + wait
        try:
            symbols = self._traded_symbols()
            while symbols:
                for symbol in symbols:
                    try:
                        self._observe_tick(symbol, self._raw_tick(symbol))
                    except GatewayInvalidRequest:
                        continue
                if self._offset is not None or _time.monotonic() >= deadline:
                    break
                self._sleep(0.2)
        except GatewayError:  # best effort: a broken link shows up on the next real call
            logger.debug("mt5 login %s: offset probe failed", self._login, exc_info=True)
        if self._offset is None and not self._unknown_said:
            self._unknown_said = True
            logger.warning(
                "mt5 login %s: broker clock offset unknown (no tick seen arriving yet); server times are shown at UTC "
                "and flagged until it is measured",
                self._login,
            )

    def _observe_tick(self, symbol: str, raw: Any) -> None:
        """Remember when we saw this symbol's newest tick; estimate the offset from a tick seen to arrive."""
        if self._offset_configured:
            return
        msc = int(getattr(raw, "time_msc", 0) or 0) or int(raw.time) * 1000
        if not msc:
            return
        now = self._clock()
        previous = self._tick_seen.get(symbol)
        self._tick_seen[symbol] = (msc, now)
        if previous is None or msc <= previous[0] or now - previous[1] > _FRESH_TICK_SECONDS:
            return  # no proof that this tick is young
        estimate = estimate_offset(msc / 1000, now)
        if estimate is None:
            logger.warning(
                "mt5 login %s: a fresh %s tick is %+.0f s off every quarter-hour offset: is this host's clock right?",
                self._login,
                symbol,
                (msc / 1000 - now) % _OFFSET_STEP,
            )
            return
        if estimate != self._offset:
            logger.info("mt5 login %s: broker clock offset measured at %+d s", self._login, estimate)
            self._offset = estimate
            self._tz = timezone(timedelta(seconds=estimate))
        self._offset_measured_at = now

    def _times(self, seconds: int, msc: int = 0) -> tuple[datetime, datetime]:
        offset = self._offset or 0
        if msc and msc // 1000 == seconds:
            utc = _EPOCH + timedelta(milliseconds=int(msc) - offset * 1000)
        else:
            utc = _EPOCH + timedelta(seconds=int(seconds) - offset)
        return utc, utc.astimezone(self._tz)

    def now(self) -> datetime:
        """The gateway's clock (the simulator's virtual one when wired so), aware UTC."""
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def _server_epoch(self, moment: datetime) -> int:
        """An aware datetime → the server-clock epoch the terminal filters history by."""
        if moment.tzinfo is None:
            raise GatewayInvalidRequest("naive datetime: pass an aware (UTC) datetime", call="history")
        return int(moment.timestamp()) + (self._offset or 0)

    # ------------------------------------------------------------------ symbol metadata

    def _meta(self, symbol: str) -> _SymbolMeta:
        meta = self._symbols.get(symbol)
        if meta is None:
            meta = _SymbolMeta(None, None)
            if symbol:
                try:
                    info = self._call("symbol_info", symbol)
                except GatewayInvalidRequest:  # e.g. a delisted symbol in old history: keep the raw precision
                    info = None
                if info is not None:
                    meta = _SymbolMeta(int(info.digits), _places_of(info.volume_step))
            self._symbols[symbol] = meta
        return meta

    def _money_places(self) -> int:
        if self._currency_digits is None:
            self._currency_digits = int(self._call("account_info").currency_digits)
        return self._currency_digits

    def _remember(self, symbol: str) -> None:
        if symbol and symbol not in self._recent_symbols:
            with self._lock:
                self._recent_symbols[symbol] = None
                while len(self._recent_symbols) > 8:
                    self._recent_symbols.pop(next(iter(self._recent_symbols)))

    # ------------------------------------------------------------------ reads

    def account(self) -> AccountState:
        if self._offset_due():
            self._probe_offset()
        info = self._call("account_info")
        money = int(info.currency_digits)
        self._currency_digits = money
        so_places = 2 if int(info.margin_so_mode) == ACCOUNT_STOPOUT_MODE_PERCENT else money
        now = self.now()
        return AccountState(
            login=int(info.login),
            server=str(info.server),
            company=str(info.company),
            name=str(info.name),
            currency=str(info.currency),
            currency_digits=money,
            leverage=int(info.leverage),
            margin_mode=_MARGIN_MODES.get(int(info.margin_mode), MarginMode.HEDGING),
            trade_allowed=bool(info.trade_allowed),
            trade_expert=bool(info.trade_expert),
            balance=to_decimal(info.balance, money),
            credit=to_decimal(info.credit, money),
            profit=to_decimal(info.profit, money),
            equity=to_decimal(info.equity, money),
            margin=to_decimal(info.margin, money),
            margin_free=to_decimal(info.margin_free, money),
            margin_level=to_decimal(info.margin_level, 2),
            margin_so_call=to_decimal(info.margin_so_call, so_places),
            margin_so_so=to_decimal(info.margin_so_so, so_places),
            time=now,
            server_time=now.astimezone(self._tz),
            server_utc_offset_known=self._offset is not None,
        )

    def terminal(self) -> TerminalState:
        info = self._call("terminal_info")
        return TerminalState(
            connected=bool(info.connected),
            trade_allowed=bool(info.trade_allowed),
            tradeapi_disabled=bool(info.tradeapi_disabled),
            build=int(info.build),
            ping_ms=ping_ms(info.ping_last),
            company=str(info.company),
            name=str(info.name),
        )

    def _position(self, raw: Any) -> Position:
        meta = self._meta(str(raw.symbol))
        money = self._money_places()
        time_utc, time_server = self._times(int(raw.time), int(raw.time_msc))
        self._remember(str(raw.symbol))
        return Position(
            ticket=int(raw.ticket),
            identifier=int(raw.identifier),
            symbol=str(raw.symbol),
            side=Side.BUY if int(raw.type) == POSITION_TYPE_BUY else Side.SELL,
            volume=to_decimal(raw.volume, meta.volume_places),
            price_open=to_decimal(raw.price_open, meta.digits),
            price_current=to_decimal(raw.price_current, meta.digits),
            sl=to_decimal(raw.sl, meta.digits) if raw.sl else None,
            tp=to_decimal(raw.tp, meta.digits) if raw.tp else None,
            swap=to_decimal(raw.swap, money),
            profit=to_decimal(raw.profit, money),
            magic=int(raw.magic),
            comment=str(raw.comment),
            reason=int(raw.reason),
            time=time_utc,
            server_time=time_server,
            time_epoch=int(raw.time),
        )

    def positions(self, *, symbol: str | None = None, ticket: int | None = None) -> Sequence[Position]:
        if symbol is not None:
            raw = self._call("positions_get", symbol=symbol)
        elif ticket is not None:
            raw = self._call("positions_get", ticket=int(ticket))
        else:
            raw = self._call("positions_get")
        for p in raw:
            self._remember(str(p.symbol))  # what the account holds is what the broker clock is measured on
        return tuple(self._position(p) for p in raw)

    def _deal(self, raw: Any) -> Deal:
        meta = self._meta(str(raw.symbol))
        money = self._money_places()
        time_utc, time_server = self._times(int(raw.time), int(raw.time_msc))
        return Deal(
            ticket=int(raw.ticket),
            order=int(raw.order),
            position_id=int(raw.position_id),
            symbol=str(raw.symbol),
            type=int(raw.type),
            entry=int(raw.entry),
            reason=int(raw.reason),
            volume=to_decimal(raw.volume, meta.volume_places),
            price=to_decimal(raw.price, meta.digits),
            commission=to_decimal(raw.commission, money),
            swap=to_decimal(raw.swap, money),
            profit=to_decimal(raw.profit, money),
            fee=to_decimal(raw.fee, money),
            magic=int(raw.magic),
            comment=str(raw.comment),
            time=time_utc,
            server_time=time_server,
            time_epoch=int(raw.time),
            time_msc=int(raw.time_msc),
        )

    def _deals(self, raw: Iterable[Any]) -> Sequence[Deal]:
        deals = [self._deal(d) for d in raw]
        deals.sort(key=lambda d: (d.time_msc, d.ticket))
        return tuple(deals)

    def deals(self, *, since: datetime, until: datetime) -> Sequence[Deal]:
        """Deals executed in [since, until] (aware datetimes; converted to the server clock the terminal filters by).

        While the server clock's offset is not measured, the window is widened by the widest offsets trade servers
        use (UTC-12 to UTC+14): taken as UTC, a UTC+2 server's deal of a minute ago looks two hours in the future and
        would be missed now, then seen as new once the offset is known (a deposit applied twice). Callers apply
        deals by ticket, so the extra ones cost nothing."""
        low, high = self._server_epoch(since), self._server_epoch(until)
        if self._offset is None:
            low, high = low - UNKNOWN_OFFSET_BEHIND, high + UNKNOWN_OFFSET_AHEAD
        return self._deals(self._call("history_deals_get", low, high))

    def deals_for_position(self, *, position_id: int) -> Sequence[Deal]:
        return self._deals(self._call("history_deals_get", position=int(position_id)))

    def symbol(self, name: str) -> SymbolSpec:
        info = self._call("symbol_info", name)
        digits = int(info.digits)
        self._symbols[name] = _SymbolMeta(digits, _places_of(info.volume_step))
        return SymbolSpec(
            name=str(info.name),
            description=str(info.description),
            digits=digits,
            point=to_decimal(info.point, digits),
            trade_tick_size=to_decimal(info.trade_tick_size),
            trade_tick_value=to_decimal(info.trade_tick_value),
            trade_contract_size=to_decimal(info.trade_contract_size),
            volume_min=to_decimal(info.volume_min),
            volume_max=to_decimal(info.volume_max),
            volume_step=to_decimal(info.volume_step),
            trade_stops_level=int(info.trade_stops_level),
            trade_freeze_level=int(info.trade_freeze_level),
            trade_mode=int(info.trade_mode),
            trade_exemode=int(info.trade_exemode),
            trade_calc_mode=int(info.trade_calc_mode),
            filling_mode=int(info.filling_mode),
            currency_base=str(info.currency_base),
            currency_profit=str(info.currency_profit),
            currency_margin=str(info.currency_margin),
            spread=int(info.spread),
        )

    def _raw_tick(self, symbol: str) -> Any:
        try:
            return self._call("symbol_info_tick", symbol)
        except GatewayInvalidRequest:
            # Not in Market Watch yet: select it once and ask again (REFERENCE §6); a truly unknown symbol fails.
            with contextlib.suppress(GatewayInvalidRequest):
                self._call("symbol_select", symbol, True)
            return self._call("symbol_info_tick", symbol)

    def tick(self, symbol: str) -> Tick:
        raw = self._raw_tick(symbol)
        self._observe_tick(symbol, raw)
        self._remember(symbol)
        digits = self._meta(symbol).digits
        time_utc, time_server = self._times(int(raw.time), int(raw.time_msc))
        return Tick(
            symbol=symbol,
            bid=to_decimal(raw.bid, digits),
            ask=to_decimal(raw.ask, digits),
            last=to_decimal(raw.last, digits),
            time=time_utc,
            server_time=time_server,
            time_msc=int(raw.time_msc),
        )

    def bars(self, *, symbol: str, timeframe: int, count: int, start_pos: int = 0) -> Sequence[Bar]:
        """Bars oldest first; rows are read by position so numpy records and plain tuples both work."""
        rows = self._call("copy_rates_from_pos", symbol, int(timeframe), int(start_pos), int(count))
        digits = self._meta(symbol).digits
        bars = []
        for row in rows:
            time_utc, time_server = self._times(int(row[0]))
            bars.append(
                Bar(
                    time=time_utc,
                    server_time=time_server,
                    open=to_decimal(float(row[1]), digits),
                    high=to_decimal(float(row[2]), digits),
                    low=to_decimal(float(row[3]), digits),
                    close=to_decimal(float(row[4]), digits),
                    tick_volume=int(row[5]),
                    spread=int(row[6]),
                )
            )
        return tuple(bars)

    def margin_for(self, *, side: Side, symbol: str, volume: Decimal, price: Decimal) -> Decimal:
        action = ORDER_TYPE_BUY if Side(side) is Side.BUY else ORDER_TYPE_SELL
        value = self._call("order_calc_margin", action, symbol, float(volume), float(price))
        return to_decimal(value, self._money_places())

    def profit_for(
        self, *, side: Side, symbol: str, volume: Decimal, price_open: Decimal, price_close: Decimal
    ) -> Decimal:
        action = ORDER_TYPE_BUY if Side(side) is Side.BUY else ORDER_TYPE_SELL
        value = self._call(
            "order_calc_profit", action, symbol, float(volume), float(price_open), float(price_close)
        )
        return to_decimal(value, self._money_places())

    # ------------------------------------------------------------------ trading

    @staticmethod
    def request_dict(request: TradeRequest) -> dict[str, Any]:
        """The order_send/order_check dict: plain float/int/str only (never Decimal, REFERENCE §8)."""
        payload: dict[str, Any] = {
            "action": int(request.action),
            "symbol": str(request.symbol),
            "volume": float(request.volume),
            "type": int(request.type),
            "price": float(request.price),
            "deviation": int(request.deviation),
            "comment": str(request.comment),
            "type_filling": int(request.type_filling),
            "type_time": int(request.type_time),
        }
        if request.magic:
            payload["magic"] = int(request.magic)
        if request.position:
            payload["position"] = int(request.position)
        if int(request.action) == TRADE_ACTION_SLTP:
            # An omitted level is 0.0 and removes it: always send both (REFERENCE §9).
            payload["sl"] = float(request.sl) if request.sl is not None else 0.0
            payload["tp"] = float(request.tp) if request.tp is not None else 0.0
        else:
            if request.sl is not None:
                payload["sl"] = float(request.sl)
            if request.tp is not None:
                payload["tp"] = float(request.tp)
        return payload

    def order_check(self, request: TradeRequest) -> OrderCheck:
        raw = self._call("order_check", self.request_dict(request))
        money = self._money_places()
        return OrderCheck(
            retcode=int(raw.retcode),
            comment=str(raw.comment),
            balance=to_decimal(raw.balance, money),
            equity=to_decimal(raw.equity, money),
            profit=to_decimal(raw.profit, money),
            margin=to_decimal(raw.margin, money),
            margin_free=to_decimal(raw.margin_free, money),
            margin_level=to_decimal(raw.margin_level, 2),
        )

    def order_send(self, request: TradeRequest) -> OrderResult:
        """Send once; any retcode comes back as an OrderResult. None + IPC error → GatewayTimeout/GatewayUnavailable:
        the order may or may not have been executed (reconcile before sending again)."""
        payload = self.request_dict(request)
        meta = self._meta(request.symbol)
        digits = meta.digits
        raw = self._call("order_send", payload)
        return OrderResult(
            retcode=int(raw.retcode),
            comment=str(raw.comment),
            deal=int(raw.deal),
            order=int(raw.order),
            volume=to_decimal(raw.volume, meta.volume_places),
            price=to_decimal(raw.price, digits),
            bid=to_decimal(raw.bid, digits),
            ask=to_decimal(raw.ask, digits),
            request_id=int(raw.request_id),
            retcode_external=int(raw.retcode_external),
        )

    # ------------------------------------------------------------------ health

    def probe(self, *, symbols: Sequence[str] | None = None) -> Health:
        """One health reading; raises GatewayError when the terminal cannot be reached (see health())."""
        started = _time.perf_counter()
        info = self._call("terminal_info")
        latency = elapsed_ms(started)
        if self._offset_due():
            self._probe_offset()
        account = self._call("account_info")
        now = self._clock()
        ages = []
        for symbol in symbols or self._probe_symbols or tuple(self._recent_symbols):
            try:
                raw = self._raw_tick(symbol)
            except GatewayInvalidRequest:
                continue
            self._observe_tick(symbol, raw)
            tick_utc, _ = self._times(int(raw.time), int(raw.time_msc))
            ages.append(to_decimal(max(0.0, now - tick_utc.timestamp()), 3))
        return Health(
            connected=bool(info.connected),
            trade_allowed=bool(info.trade_allowed)
            and bool(account.trade_allowed)
            and bool(account.trade_expert),
            tradeapi_disabled=bool(info.tradeapi_disabled),
            ping_ms=ping_ms(info.ping_last),
            newest_tick_age_seconds=min(ages) if ages else None,
            probe_latency_ms=latency,
            checked_at=datetime.fromtimestamp(now, tz=UTC),
            server_utc_offset=self._offset,
            server_utc_offset_source=self.server_utc_offset_source,
            server_utc_offset_measured_at=self.server_utc_offset_measured_at,
        )

    def health(self, *, symbols: Sequence[str] | None = None) -> Health:
        """Never raises: a failed probe is a Health with connected=False and the error text.

        `trade_allowed` is the REFERENCE §3 check: terminal Algo Trading on, and the account may trade and allows
        automated trading. The tick age is that of the freshest of `symbols` (default: the configured probe symbols,
        else the symbols recently read through this gateway).
        """
        started = _time.perf_counter()
        try:
            return self.probe(symbols=symbols)
        except GatewayError as exc:
            return failed_health(exc, started=started, checked_at=self.now())
