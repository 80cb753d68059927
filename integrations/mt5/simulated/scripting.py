"""Script helpers of the simulated terminal (`sim_*`): NOT part of the MT5 API.

Used by the demo, the tests and the scenario runner to move the market and the clock, trade "by hand" (as a trader
on a phone or desktop would), inject faults and flip terminal switches. They bypass faults and the IPC link, take
the terminal's lock, and raise `SimulatorError` when asked for something impossible.
"""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from integrations.mt5 import constants as c
from integrations.mt5.simulated import views
from integrations.mt5.simulated.catalogue import build_spec
from integrations.mt5.simulated.errors import IPC_TIMEOUT, NO_IPC
from integrations.mt5.simulated.market import FEED_MODES
from integrations.mt5.simulated.trading import evaluate
from integrations.mt5.structs import TradeRequest

if TYPE_CHECKING:
    import threading

    from integrations.mt5.simulated.clock import SimClock
    from integrations.mt5.simulated.engine import Engine
    from integrations.mt5.simulated.faults import FaultPlan
    from integrations.mt5.simulated.market import Market
    from integrations.mt5.simulated.views import TerminalState

_SIDES = {"buy": c.ORDER_TYPE_BUY, "sell": c.ORDER_TYPE_SELL, c.ORDER_TYPE_BUY: c.ORDER_TYPE_BUY}
_SIDES[c.ORDER_TYPE_SELL] = c.ORDER_TYPE_SELL
# The non-trading deals a broker books, by the name scenario files use.
BALANCE_OPERATION_KINDS = {
    "balance": c.DEAL_TYPE_BALANCE,
    "credit": c.DEAL_TYPE_CREDIT,
    "charge": c.DEAL_TYPE_CHARGE,
    "correction": c.DEAL_TYPE_CORRECTION,
    "bonus": c.DEAL_TYPE_BONUS,
}


class SimulatorError(Exception):
    """A script helper could not do what it was asked (unknown symbol, a trade the server rejected, ...)."""

    def __init__(self, message: str, *, retcode: int | None = None) -> None:
        super().__init__(message)
        self.retcode = retcode


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class ScriptingMixin:
    _lock: "threading.RLock"
    _engine: "Engine"
    _market: "Market"
    _clock: "SimClock"
    _faults: "FaultPlan"
    _state: "TerminalState"
    _ipc: bool
    _last_error: tuple[int, str]
    _selected: set[str]
    _investor: bool
    _account_when_disconnected: Any = None  # AccountInfo frozen while off the trade server

    # --- time ----------------------------------------------------------------------------------------------------
    def sim_now(self) -> datetime:
        """The current instant (aware UTC)."""
        return self._clock.now()

    def sim_server_time(self) -> int:
        """The trade server's wall clock as an MT5 epoch (seconds)."""
        return self._clock.server_s()

    def sim_advance(self, seconds: float) -> None:
        """Move a virtual clock forward; the market walks and SL/TP/stop-out/pending orders fire on the way."""
        with self._lock:
            self._clock.advance(seconds)
            self._engine.sync()

    def sim_set_time(self, when: datetime) -> None:
        with self._lock:
            self._clock.set(when)
            self._engine.sync()

    # --- market --------------------------------------------------------------------------------------------------
    def _spec_name(self, symbol: str) -> str:
        if symbol not in self._market:
            raise SimulatorError(f"unknown symbol {symbol}")
        return symbol

    def sim_set_price(self, symbol: str, bid: Any, ask: Any = None, *, walk: bool = False) -> None:
        """Quote `bid`/`ask` now (ask defaults to bid + the typical spread). The symbol then holds that price
        ("flat" feed) unless `walk=True`. SL/TP/stop-out/pending orders react at once."""
        with self._lock:
            self._engine.sync()
            feed = self._market.feed(self._spec_name(symbol))
            spec = feed.spec
            bid_points = spec.to_points(_decimal(bid))
            ask_points = bid_points + spec.spread if ask is None else spec.to_points(_decimal(ask))
            if bid_points <= 0 or ask_points < bid_points:
                raise SimulatorError(f"bad prices for {symbol}: bid={bid} ask={ask}")
            quote = feed.set_price(
                self._engine.now_ms(), bid_points, ask_points, mode="walk" if walk else "flat"
            )
            self._engine.on_tick(quote.time_msc, [symbol])

    def sim_set_feed(self, symbol: str, mode: str) -> None:
        """'walk' (random walk), 'flat' (price held, quotes keep coming) or 'frozen' (no ticks: a stale feed)."""
        if mode not in FEED_MODES:
            raise SimulatorError(f"feed mode must be one of {FEED_MODES}")
        with self._lock:
            self._engine.sync()
            self._market.feed(self._spec_name(symbol)).mode = mode

    def sim_set_market_open(self, symbol: str, is_open: bool | None) -> None:
        """Force the symbol's session open/closed (None: back to its schedule). Closed -> 10018, no ticks."""
        with self._lock:
            self._engine.sync()
            self._market.feed(self._spec_name(symbol)).open_override = is_open

    def sim_set_symbol(self, symbol: str, **overrides: Any) -> None:
        """Change a symbol's specification (not its digits), e.g. stops_level=50, trade_mode=..., filling_mode=1."""
        with self._lock:
            feed = self._market.feed(self._spec_name(symbol))
            changed = build_spec(symbol, {**_spec_fields(feed.spec), **overrides})
            if changed.digits != feed.spec.digits:
                raise SimulatorError("digits cannot change on a live symbol")
            feed.spec = replace(changed, start_bid=feed.spec.start_bid)

    def sim_add_symbol(self, symbol: str, **overrides: Any) -> None:
        """Add a symbol (from the catalogue or defined by `overrides`) to this terminal."""
        with self._lock:
            if symbol in self._market:
                raise SimulatorError(f"{symbol} exists")
            spec = build_spec(symbol, overrides)
            self._market.add(spec, start_ms=self._engine.now_ms())
            if spec.select:
                self._selected.add(symbol)

    # --- trading by hand -----------------------------------------------------------------------------------------
    def _manual(self, request: dict[str, Any], reason: int) -> Any:
        self._engine.sync()
        symbol = request["symbol"]
        self._engine.refresh([symbol, *self._engine.money.conversion_symbols(self._market.spec(symbol))])
        bid, ask = self._engine.bid_ask(symbol)
        values = {
            "action": c.TRADE_ACTION_DEAL,
            "magic": 0,
            "order": 0,
            "price": 0.0,
            "stoplimit": 0.0,
            "sl": 0.0,
            "tp": 0.0,
            "deviation": 0,
            "type_filling": c.ORDER_FILLING_FOK,
            "type_time": 0,
            "expiration": 0,
            "comment": "",
            "position": 0,
            "position_by": 0,
            **request,
        }
        values["price"] = float(ask if values["type"] == c.ORDER_TYPE_BUY else bid)
        spec = self._market.spec(symbol)
        if spec.exemode == c.SYMBOL_TRADE_EXECUTION_MARKET and not spec.filling_mode & 1:
            values["type_filling"] = c.ORDER_FILLING_IOC
        outcome = evaluate(self._engine, TradeRequest.from_dict(values), execute=True, reason=reason)  # type: ignore[attr-defined]
        if outcome.retcode != c.TRADE_RETCODE_DONE:
            raise SimulatorError(f"{outcome.retcode} {outcome.comment}", retcode=outcome.retcode)
        return outcome

    def sim_open_manual(
        self,
        symbol: str,
        side: str | int,
        volume: Any,
        *,
        sl: Any = 0,
        tp: Any = 0,
        magic: int = 0,
        comment: str = "",
        reason: int = c.ORDER_REASON_CLIENT,
    ) -> int:
        """Open (or, on netting, change) a position as a trader would by hand; returns the position ticket."""
        if side not in _SIDES:
            raise SimulatorError("side must be 'buy' or 'sell'")
        with self._lock:
            self._spec_name(symbol)
            request = {
                "symbol": symbol,
                "type": _SIDES[side],
                "volume": float(volume),
                "sl": float(sl),
                "tp": float(tp),
                "magic": magic,
                "comment": comment,
            }
            outcome = self._manual(request, reason)
            for deal in reversed(self._engine.account.deals):
                if deal.ticket == outcome.deal:
                    return deal.position_id
            raise SimulatorError("deal not recorded")  # pragma: no cover

    def sim_close_manual(
        self, ticket: int, *, volume: Any = None, reason: int = c.ORDER_REASON_CLIENT
    ) -> int:
        """Close (part of) a position by hand, e.g. reason=ORDER_REASON_MOBILE for a phone; returns the deal."""
        with self._lock:
            position = self._engine.account.positions.get(ticket)
            if position is None:
                raise SimulatorError(f"no open position {ticket}", retcode=c.TRADE_RETCODE_POSITION_CLOSED)
            request = {
                "symbol": position.symbol,
                "volume": float(volume or position.volume),
                "position": ticket,
                "type": c.ORDER_TYPE_SELL if position.is_buy else c.ORDER_TYPE_BUY,
                "magic": position.magic,
            }
            deal: int = self._manual(request, reason).deal
            return deal

    def sim_find_positions(self, *, comment: str | None = None, magic: int | None = None) -> list[int]:
        with self._lock:
            return [
                p.ticket
                for p in self._engine.account.positions.values()
                if (comment is None or p.comment == comment) and (magic is None or p.magic == magic)
            ]

    # --- money ---------------------------------------------------------------------------------------------------
    def sim_deposit(self, amount: Any, comment: str = "Deposit") -> int:
        """A balance operation (negative = withdrawal), recorded as a DEAL_TYPE_BALANCE deal; returns its ticket."""
        with self._lock:
            self._engine.sync()
            ticket = self._engine.balance_operation(_decimal(amount), comment)
            self._engine.check_stop_out()
            return ticket

    def sim_credit(self, amount: Any, comment: str = "Credit") -> int:
        with self._lock:
            return self._engine.balance_operation(_decimal(amount), comment, credit=True)

    def sim_balance_operation(self, kind: str, amount: Any, comment: str = "") -> int:
        """Book a non-trading deal of `kind` (balance, credit, bonus, charge, correction) as the broker would: a
        deal of that DEAL_TYPE that moves `credit` (credit) or `balance` (the others). Returns its ticket."""
        if kind not in BALANCE_OPERATION_KINDS:
            known = ", ".join(BALANCE_OPERATION_KINDS)
            raise SimulatorError(f"unknown balance operation {kind!r}; expected one of {known}")
        with self._lock:
            self._engine.sync()
            ticket = self._engine.balance_operation(
                _decimal(amount), comment or kind.capitalize(), deal_type=BALANCE_OPERATION_KINDS[kind]
            )
            self._engine.check_stop_out()
            return ticket

    def sim_set_account(self, **fields: Any) -> None:
        """Change account settings: leverage, margin_so_call, margin_so_so, margin_so_mode, trade_allowed,
        trade_expert, name, limit_orders, fifo_close."""
        allowed = {
            "leverage",
            "margin_so_call",
            "margin_so_so",
            "margin_so_mode",
            "trade_allowed",
            "trade_expert",
            "name",
            "limit_orders",
            "fifo_close",
            "trade_mode",
        }
        with self._lock:
            for key, value in fields.items():
                if key not in allowed:
                    raise SimulatorError(f"cannot set {key}")
                if key in ("margin_so_call", "margin_so_so"):
                    value = _decimal(value)
                setattr(self._engine.account, key, value)
            self._engine.check_stop_out()

    # --- faults and switches -------------------------------------------------------------------------------------
    def sim_inject_fault(
        self, call: str, last_error: tuple[int, str] = IPC_TIMEOUT, times: int = 1, *, executed: bool = False
    ) -> None:
        """The next `times` calls of `call` fail with `last_error` (None/False returned); `executed=True`: the call
        takes effect first."""
        self._faults.inject(call, tuple(last_error), times=times, executed=executed)  # type: ignore[arg-type]

    def sim_inject_retcode(
        self,
        retcode: int,
        times: int = 1,
        *,
        call: str = "order_send",
        executed: bool = False,
        comment: str | None = None,
    ) -> None:
        """The next `times` order_send (or order_check) calls answer `retcode` with zeroed fields."""
        self._faults.inject_retcode(call, retcode, times=times, executed=executed, comment=comment)

    def sim_set_latency(self, call: str, seconds: float) -> None:
        """Every call of `call` ("*" = all) takes `seconds` (through the terminal's `sleep`)."""
        self._faults.set_latency(call, seconds)

    def sim_clear_faults(self) -> None:
        self._faults.clear()

    def sim_drop_connection(self) -> None:
        """Lose the IPC link: every call returns None/False with (-10004, 'No IPC connection') until initialize."""
        with self._lock:
            self._ipc = False
            self._last_error = NO_IPC

    def sim_set_trade_allowed(self, allowed: bool) -> None:
        """The terminal's Algo Trading button; off -> order_send retcode 10027."""
        with self._lock:
            self._state.trade_allowed = allowed

    def sim_set_tradeapi_disabled(self, disabled: bool) -> None:
        """Trading via the Python API switched off -> order_send None with (-8, ...)."""
        with self._lock:
            self._state.tradeapi_disabled = disabled

    def sim_set_connected(self, connected: bool) -> None:
        """Connection to the trade server. Off, as a real terminal that lost it: terminal_info().connected False,
        positions_get answers (), account_info keeps the values of the moment the link dropped, order_send answers
        retcode CONNECTION 10031. On again: live answers."""
        with self._lock:
            if not connected and self._state.connected:
                self._engine.sync()
                self._account_when_disconnected = views.account_info(self._engine, read_only=self._investor)
            elif connected:
                self._account_when_disconnected = None
            self._state.connected = connected

    def sim_set_ping(self, microseconds: int) -> None:
        with self._lock:
            self._state.ping_last = microseconds


def _spec_fields(spec: Any) -> dict[str, Any]:
    from dataclasses import fields

    skip = {"name", "extra"}
    return {f.name: getattr(spec, f.name) for f in fields(spec) if f.name not in skip}
