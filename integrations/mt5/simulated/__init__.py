"""The simulated MT5 terminal: an in-memory, deterministic, scriptable stand-in for the `MetaTrader5` module.

    from integrations.mt5.simulated import SimClock, SimulatedTerminal

    mt5 = SimulatedTerminal(login=5001, password="pw", balance=10_000, clock=SimClock.fixed())
    mt5.initialize(login=5001, password="pw", server="Simulated-Demo")
    mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, ...})
    mt5.sim_set_price("EURUSD", 1.07, 1.0701)   # script helpers: sim_*

Deviation from the real module: copy_rates_* return a tuple of `structs.Rate` records, not a numpy array.
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
