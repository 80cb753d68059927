"""The simulated MT5 terminal: an in-memory, deterministic, scriptable stand-in for the `MetaTrader5` module (5.0.6231).

    from integrations.mt5.simulated import SimClock, SimulatedTerminal

    mt5 = SimulatedTerminal(login=5001, password="pw", balance=10_000, margin_mode="hedging", clock=SimClock.fixed())
    mt5.initialize(login=5001, password="pw", server="Simulated-Demo")
    tick = mt5.symbol_info_tick("EURUSD")
    mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1,
                    "type": mt5.ORDER_TYPE_BUY, "price": tick.ask, "deviation": 20})
    mt5.sim_set_price("EURUSD", 1.07, 1.0701)     # script helpers: sim_* (scripting.py)
    mt5.sim_advance(60)                           # virtual clock

Many accounts: `default_registry().create_account(login, server=..., password=..., balance=..., ...)`, or
`registry.terminal(login, server)` (created on first use, any password).

Modules: catalogue (symbol specs), market (seeded walk, M1 bars), clock, account/engine/trading/pending/triggers (the
trade server), money (margin/profit/conversion), views (structs), faults, api_* (the MT5 functions), scripting
(sim_* helpers), registry.

Deviations from the real module (everything else follows shared/mt5/REFERENCE.md; unverified points of its §15 are
decided as noted):

* copy_rates_* return a tuple of `structs.Rate` records (oldest first), not a numpy structured array;
  copy_ticks_* are not simulated (None, last_error (-7, 'Terminal: Unsupported function')).
* One account per terminal: login()/initialize() with another login fail with (-6, ...) instead of switching
  accounts. Accounts created without a password accept any password.
* Unverified behaviours chosen strictly: an `int` volume is refused (-2, 'Invalid "volume" argument'); unknown
  request keys are ignored; an unknown ticket/position yields `()` with (1, 'Success'); naive datetimes are read as
  UTC epochs, aware ones by their instant, and both are compared with server-clock epochs (the offset gotcha stays).
* `shutdown()` returns True. `version()` reports a simulated build (500, 5430, '14 Nov 2025').
* Market Watch selection only sets `select`/`visible` (ticks of unselected symbols are still served); order_send
  selects the symbol.
* Execution: fills at the current bid/ask, no partial fills and no slippage beyond the quote; Instant/Request
  execution requote (10004/10020) beyond `deviation` and fill FOK whatever `type_filling` says; Market execution
  ignores the request price and checks the symbol's filling flags. DONE_PARTIAL, TIMEOUT etc. only via faults.
* Money: margin at the position's open price (conversion at current rates), hedged legs via `margin_hedged`, no
  margin for pending orders; swaps in POINTS and per-lot currency modes only; commission per lot (default 0).
* Server-side events (SL/TP, stop-out, pending activation, swap rollover) are evaluated on a tick grid
  (`tick_interval_ms`, default 1 s). The server's UTC offset is fixed (default +2 h, no DST switch).
* market_book_* serve one level per side built from the quote. Retcode comments are our wording of the server's.
"""

from integrations.mt5.simulated.catalogue import CATALOGUE, SymbolSpec, build_spec
from integrations.mt5.simulated.clock import SimClock
from integrations.mt5.simulated.registry import TerminalRegistry, default_registry
from integrations.mt5.simulated.scripting import SimulatorError
from integrations.mt5.simulated.terminal import DEFAULT_SERVER, SimulatedTerminal

__all__ = [
    "CATALOGUE",
    "DEFAULT_SERVER",
    "SimClock",
    "SimulatedTerminal",
    "SimulatorError",
    "SymbolSpec",
    "TerminalRegistry",
    "build_spec",
    "default_registry",
]
