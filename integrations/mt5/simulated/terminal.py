"""`SimulatedTerminal`: one in-memory MT5 terminal logged into one account, exposing the official module's function
API as methods with the same names, argument rules and return conventions, and the module's constants as class
attributes (`terminal.ORDER_TYPE_BUY`). A drop-in for `import MetaTrader5 as mt5` wherever code takes "an object with
the MT5 API".

Conventions kept from the real module: failure -> None (False for initialize/login/symbol_select/market_book_*) and
`last_error()`; `(1, 'Success')` after every successful call; `(-10004, 'No IPC connection')` before initialize,
after shutdown or a dropped link; empty tuple when nothing matches; trade rejections as result objects. Calls on one
terminal are serialised by a lock (the real terminal serialises them too). Script helpers (`sim_*`) live in
`scripting.py`; they are not part of the MT5 API.
"""

import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from integrations.mt5 import constants
from integrations.mt5.simulated import views
from integrations.mt5.simulated.account import Account, margin_mode_value
from integrations.mt5.simulated.api_terminal import TerminalApiMixin
from integrations.mt5.simulated.catalogue import CATALOGUE, build_spec
from integrations.mt5.simulated.clock import SimClock
from integrations.mt5.simulated.engine import Engine
from integrations.mt5.simulated.errors import NO_IPC, SUCCESS, ApiError
from integrations.mt5.simulated.faults import Fault, FaultPlan
from integrations.mt5.simulated.market import Market
from integrations.mt5.simulated.scripting import ScriptingMixin

DEFAULT_SERVER = "Simulated-Demo"


class SimulatedTerminal(TerminalApiMixin, ScriptingMixin):
    """An MT5 terminal simulator for one account.

    `symbols`: None for the whole built-in catalogue; an iterable of names to use a subset; or a mapping
    name -> overrides (see `catalogue.build_spec`), where unknown names define new symbols. `clock`: real time by
    default; pass `SimClock.fixed(...)` for a virtual clock. `sleep` is what latency faults call. `swaps=False` turns
    off the daily swap rollover (scenarios that want equity to move only with prices). `history_bars` M1 bars are
    generated before the start; at most `bar_memory` M1 bars (about two weeks) are kept per symbol.
    """

    def __init__(
        self,
        *,
        login: int = 5001,
        password: str | None = "sim-pass",  # noqa: S107 - a simulated account's default password
        server: str = DEFAULT_SERVER,
        balance: Decimal | float | int | str = 10_000,
        currency: str = "USD",
        leverage: int = 100,
        margin_mode: str | int = "hedging",
        name: str = "Simulated Trader",
        company: str = "Simulated Broker Ltd.",
        investor_password: str | None = None,
        margin_so_call: float = 50.0,
        margin_so_so: float = 30.0,
        symbols: Mapping[str, Mapping[str, Any]] | Iterable[str] | None = None,
        clock: SimClock | None = None,
        seed: int | str = 0,
        tick_interval_ms: int = 1000,
        history_bars: int = 1440,
        bar_memory: int = 20_000,
        terminal_state: views.TerminalState | None = None,
        sleep: Callable[[float], None] = time.sleep,
        swaps: bool = True,
    ) -> None:
        if not isinstance(login, int) or isinstance(login, bool):
            raise TypeError("login must be an int")
        self._lock = threading.RLock()
        self._clock = clock or SimClock.real()
        self._sleep = sleep
        self._faults = FaultPlan()
        self._state = terminal_state or views.TerminalState(company=company)
        self._ipc = False
        self._last_error: tuple[int, str] = NO_IPC
        self._request_id = 0
        self._active_fault: Fault | None = None
        self.call_counts: Counter[str] = Counter()
        specs = [build_spec(n, o) for n, o in _symbol_overrides(symbols).items()]
        self._market = Market(
            specs,
            seed=seed,
            start_ms=self._clock.server_ms(),
            tick_interval_ms=tick_interval_ms,
            history_bars=history_bars,
            maxbars=min(bar_memory, self._state.maxbars),
        )
        self._selected = {spec.name for spec in specs if spec.select}
        account = Account(
            login=login,
            server=server,
            password=password,
            currency=currency,
            leverage=leverage,
            margin_mode=margin_mode_value(margin_mode),
            name=name,
            company=company,
            investor_password=investor_password,
            margin_so_call=Decimal(str(margin_so_call)),
            margin_so_so=Decimal(str(margin_so_so)),
        )
        self._engine = Engine(account, self._market, self._clock, swaps=swaps)
        opening = Decimal(str(balance))
        if opening:
            self._engine.balance_operation(opening, "Initial deposit")
        self._investor = False

    # Persistence (simulated/persistence.py): everything the trade server and the market hold is pickled; the lock,
    # the sleep function and injected faults belong to the running process and start afresh.
    _TRANSIENT = ("_lock", "_sleep", "_faults", "_active_fault")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._TRANSIENT:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._sleep = time.sleep
        self._faults = FaultPlan()
        self._active_fault = None

    def state_bytes(self) -> bytes:
        """The terminal pickled under its lock: a consistent picture even while calls are being served."""
        with self._lock:
            return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    def __repr__(self) -> str:
        acct = self._engine.account
        return f"<SimulatedTerminal {acct.login}@{acct.server}>"

    @property
    def clock(self) -> SimClock:
        return self._clock

    @property
    def login_id(self) -> int:
        return self._engine.account.login

    @property
    def server(self) -> str:
        return self._engine.account.server

    # --- dispatch ------------------------------------------------------------------------------------------------
    def _dispatch(
        self,
        name: str,
        failure: Any,
        needs_connection: bool,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        with self._lock:
            self.call_counts[name] += 1
            delay = self._faults.latency(name)
            if delay:
                self._sleep(delay)
            if needs_connection and not self._ipc:
                self._last_error = NO_IPC
                return failure
            fault = self._faults.take(name)
            if fault is not None and fault.last_error is not None and not fault.executed:
                self._last_error = fault.last_error
                return failure
            self._active_fault = fault if fault is not None and fault.retcode is not None else None
            try:
                self._engine.sync()
                result = method(self, *args, **kwargs)
            except ApiError as error:
                self._last_error = error.pair
                return failure
            finally:
                self._active_fault = None
            self._last_error = SUCCESS
            if fault is not None and fault.last_error is not None:  # executed, then reported as failed
                self._last_error = fault.last_error
                return failure
            return result

    def last_error(self) -> tuple[int, str]:
        """(code, description) of the last call; never fails, never changes it."""
        with self._lock:
            return self._last_error


def _symbol_overrides(
    symbols: Mapping[str, Mapping[str, Any]] | Iterable[str] | None,
) -> dict[str, Mapping[str, Any]]:
    if symbols is None:
        return {name: {} for name in CATALOGUE}
    if isinstance(symbols, Mapping):
        merged: dict[str, Mapping[str, Any]] = {name: {} for name in CATALOGUE}
        merged.update({name: dict(overrides or {}) for name, overrides in symbols.items()})
        return merged
    return {name: {} for name in symbols}


for _name in constants.CONSTANT_NAMES:
    setattr(SimulatedTerminal, _name, getattr(constants, _name))
