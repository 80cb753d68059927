"""A per-account session around a TerminalGateway: connect on demand, reconnect with back-off, circuit breaker.

`ManagedGateway` implements the same Mt5Gateway port, so callers never know it is there:

* before a call it makes sure the terminal is connected (initialize + login + verify login);
* when a call fails with GatewayUnavailable (incl. GatewayTimeout) it drops the connection; the next call reconnects,
  and repeated failed reconnects wait an exponential, fully jittered delay (calls in between fail fast with
  GatewayUnavailable without touching the terminal);
* link failures (unavailable, timeout, auth, version) count into the account's CircuitBreaker; while it is open every
  call raises GatewayCircuitOpen without touching the terminal. Errors that prove the link works (an invalid request,
  trading disabled) count as successes for the breaker.

Credentials live only inside the wrapped TerminalGateway; nothing here logs, repr()s or raises them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from integrations.mt5.circuit import CLOSED, HALF_OPEN, OPEN, Backoff, BreakerState, CircuitBreaker
from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayCircuitOpen,
    GatewayError,
    GatewayUnavailable,
    GatewayVersionMismatch,
)
from integrations.mt5.terminal import TerminalGateway, failed_health
from integrations.mt5.types import (
    AccountState,
    Bar,
    Deal,
    Health,
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

T = TypeVar("T")

# Failures of the link itself: these count into the breaker. Everything else proves the terminal answered.
_LINK_FAILURES = (GatewayUnavailable, GatewayAuthFailed, GatewayVersionMismatch)


CIRCUIT_POLL_SECONDS = 0.2


class _BackingOff(GatewayUnavailable):
    """Raised while waiting for the next reconnect attempt; no terminal call was made."""


class ManagedGateway:
    def __init__(
        self,
        gateway: TerminalGateway,
        *,
        account_key: str,
        breaker: CircuitBreaker,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        trial_wait_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gateway = gateway
        self.account_key = account_key
        self.breaker = breaker
        self.backoff = backoff or Backoff()
        self._clock = clock
        # How long a call may wait for a circuit that is about to let calls through (a trial in flight, or an open
        # period ending): after an outage the sync that comes a moment after the health probe's trial, or a moment
        # before the open period ends, goes through instead of losing a whole cycle.
        self.trial_wait_seconds = trial_wait_seconds
        self._sleep = sleep
        self._lock = threading.RLock()
        self._connect_failures = 0
        self._next_attempt_at = 0.0
        self._scope = threading.local()

    def __repr__(self) -> str:
        return f"<ManagedGateway {self.account_key} connected={self._gateway.is_connected}>"

    @property
    def inner(self) -> TerminalGateway:
        return self._gateway

    @property
    def is_connected(self) -> bool:
        return self._gateway.is_connected

    @property
    def server_utc_offset(self) -> int | None:
        return self._gateway.server_utc_offset

    @property
    def server_utc_offset_source(self) -> str:
        return self._gateway.server_utc_offset_source

    # ------------------------------------------------------------------ machinery

    def _circuit_open(self, state: BreakerState, call: str) -> GatewayCircuitOpen:
        if state.state == OPEN:
            wait = max(0.0, self.breaker.open_seconds(state) - (self.breaker.now() - (state.opened_at or 0)))
            detail = f"after {state.failures} consecutive failures; next trial in {wait:.0f}s"
        else:
            detail = "a trial call is in progress"
        return GatewayCircuitOpen(
            f"circuit open for {self.account_key} ({detail}); last error: {state.last_error or 'n/a'}",
            call=call,
        )

    def _ensure_connected(self, *, trial: bool) -> None:
        if self._gateway.is_connected:
            return
        now = self._clock()
        if not trial and now < self._next_attempt_at:
            raise _BackingOff(
                f"reconnect to {self.account_key} backing off for {self._next_attempt_at - now:.1f}s more",
                call="connect",
            )
        try:
            self._gateway.connect()
        except GatewayError:
            self._connect_failures += 1
            self._next_attempt_at = self._clock() + self.backoff.delay(self._connect_failures)
            raise
        self._connect_failures = 0
        self._next_attempt_at = 0.0

    def _drop(self, exc: GatewayError) -> None:
        logger.warning("mt5 %s: dropping the connection after %s", self.account_key, type(exc).__name__)
        self._gateway.close()

    @contextmanager
    def reading(self) -> Iterator[ManagedGateway]:
        """Calls made inside (one sync's reading: a handful of calls within milliseconds) share one look at the
        circuit: once the breaker was read closed and clean, the next calls of the block go without reading it
        again (one Redis round trip per reading instead of one per call). A failure inside the block is recorded
        as always and makes the next call read the breaker again. Nested blocks share the outer one's look."""
        if getattr(self._scope, "active", False):
            yield self
            return
        self._scope.active, self._scope.granted = True, None
        try:
            yield self
        finally:
            self._scope.active, self._scope.granted = False, None

    def _circuit_allow(self) -> tuple[bool, BreakerState]:
        granted = getattr(self._scope, "granted", None)
        if granted is not None:
            return True, granted
        allowed, state = self._circuit_allow_now()
        if allowed and state.state == CLOSED and not state.failures and getattr(self._scope, "active", False):
            self._scope.granted = state
        return allowed, state

    def _forget_granted(self) -> None:
        self._scope.granted = None

    def _circuit_allow_now(self) -> tuple[bool, BreakerState]:
        allowed, state = self.breaker.allow()
        deadline = self._clock() + self.trial_wait_seconds
        while not allowed and self._clock() < deadline and self._about_to_allow(state, deadline):
            self._sleep(CIRCUIT_POLL_SECONDS)
            allowed, state = self.breaker.allow()
        return allowed, state

    def _about_to_allow(self, state: BreakerState, deadline: float) -> bool:
        if state.state == HALF_OPEN:
            return True  # another caller's trial: its outcome is a moment away
        remaining = self.breaker.open_seconds(state) - (self.breaker.now() - (state.opened_at or 0))
        return state.state == OPEN and remaining <= deadline - self._clock()

    def _run(self, call: str, action: Callable[[TerminalGateway], T]) -> T:
        allowed, state = self._circuit_allow()
        if not allowed:
            raise self._circuit_open(state, call)
        with self._lock:
            try:
                self._ensure_connected(trial=state.state == HALF_OPEN)
            except _BackingOff:
                raise
            except GatewayError as exc:  # any failure to connect is a link failure
                self._forget_granted()
                self.breaker.record_failure(str(exc))
                raise
            try:
                result = action(self._gateway)
            except _LINK_FAILURES as exc:
                if isinstance(exc, GatewayUnavailable) and self._gateway.is_connected:
                    self._drop(exc)
                self._forget_granted()
                self.breaker.record_failure(str(exc))
                raise
            except GatewayError:
                self.breaker.record_success(seen=state)  # the terminal answered; the request itself was wrong
                raise
        self.breaker.record_success(seen=state)
        return result

    # ------------------------------------------------------------------ the port

    def connect(self) -> None:
        self._run("connect", lambda g: None)

    def close(self) -> None:
        with self._lock:
            self._gateway.close()
            self._connect_failures = 0
            self._next_attempt_at = 0.0

    def account(self) -> AccountState:
        return self._run("account_info", lambda g: g.account())

    def terminal(self) -> TerminalState:
        return self._run("terminal_info", lambda g: g.terminal())

    def positions(self, *, symbol: str | None = None, ticket: int | None = None) -> Sequence[Position]:
        return self._run("positions_get", lambda g: g.positions(symbol=symbol, ticket=ticket))

    def deals(self, *, since: datetime, until: datetime) -> Sequence[Deal]:
        return self._run("history_deals_get", lambda g: g.deals(since=since, until=until))

    def deals_for_position(self, *, position_id: int) -> Sequence[Deal]:
        return self._run("history_deals_get", lambda g: g.deals_for_position(position_id=position_id))

    def symbol(self, name: str) -> SymbolSpec:
        return self._run("symbol_info", lambda g: g.symbol(name))

    def tick(self, symbol: str) -> Tick:
        return self._run("symbol_info_tick", lambda g: g.tick(symbol))

    def bars(self, *, symbol: str, timeframe: int, count: int, start_pos: int = 0) -> Sequence[Bar]:
        return self._run(
            "copy_rates_from_pos",
            lambda g: g.bars(symbol=symbol, timeframe=timeframe, count=count, start_pos=start_pos),
        )

    def margin_for(self, *, side: Side, symbol: str, volume: Decimal, price: Decimal) -> Decimal:
        return self._run(
            "order_calc_margin", lambda g: g.margin_for(side=side, symbol=symbol, volume=volume, price=price)
        )

    def profit_for(
        self, *, side: Side, symbol: str, volume: Decimal, price_open: Decimal, price_close: Decimal
    ) -> Decimal:
        return self._run(
            "order_calc_profit",
            lambda g: g.profit_for(
                side=side, symbol=symbol, volume=volume, price_open=price_open, price_close=price_close
            ),
        )

    def order_check(self, request: TradeRequest) -> OrderCheck:
        return self._run("order_check", lambda g: g.order_check(request))

    def order_send(self, request: TradeRequest) -> OrderResult:
        """Never retried here: a GatewayTimeout/GatewayUnavailable means the outcome is unknown (reconcile first)."""
        return self._run("order_send", lambda g: g.order_send(request))

    def health(self, *, symbols: Sequence[str] | None = None) -> Health:
        """Never raises: with the circuit open or the link down, a Health with connected=False and the reason."""
        started = time.perf_counter()
        try:
            return self._run("health", lambda g: g.probe(symbols=symbols))
        except GatewayError as exc:
            return failed_health(exc, started=started, checked_at=self._gateway.now())

    def circuit_state(self) -> dict[str, Any]:
        """For pages/admin: the breaker state of this account (no credentials)."""
        state = self.breaker.state
        return {
            "state": state.state,
            "failures": state.failures,
            "opened_at": state.opened_at,
            "last_error": state.last_error,
        }
