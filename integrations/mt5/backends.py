"""The raw APIs TerminalGateway can drive. The only module that imports `MetaTrader5` (lazily).

Each returns an object with the official module's function API:

* `native_api()` — the `MetaTrader5` module itself (Windows, or Wine Python; one terminal per process);
* `simulated_api(login, server)` — the simulated terminal of that account from the simulator's registry;
* `bridge_api(url, secret, ...)` — a BridgeClient talking to a bridge server next to a real terminal;
* `ea_api(login, server)` — the state an Expert Advisor in the trader's own terminal pushed to us.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from integrations.mt5.errors import GatewayUnavailable


def native_api() -> Any:
    try:
        import MetaTrader5  # type: ignore[import-not-found]
    except ImportError as exc:
        where = "Linux/macOS" if sys.platform != "win32" else "this Python"
        raise GatewayUnavailable(
            f"the native MT5 backend is not available on {where}: the MetaTrader5 package exists only for Windows "
            "(or Wine) Python next to a terminal. Use the 'bridge' backend and run "
            "integrations/mt5/bridge/server.py --backend native on the terminal's host (docs/DEPLOY-MT5.md).",
            call="initialize",
        ) from exc
    return MetaTrader5


def simulated_api(login: int, server: str) -> Any:
    """The in-process simulated terminal for (login, server), created on first use by the simulator's registry."""
    from integrations.mt5.simulated import registry

    return registry.terminal(login, server)


def simulated_clock(api: Any) -> Callable[[], float] | None:
    """The simulated terminal's clock as epoch seconds (virtual in scenarios), so the gateway's offset estimate and
    tick ages use the same time as the terminal; None when the object exposes no clock."""
    clock = getattr(api, "clock", None)
    if clock is None or not hasattr(clock, "utc_ms"):
        return None
    return lambda: clock.utc_ms() / 1000


def bridge_api(url: str, secret: str, *, login: int, server: str, timeout: float = 10.0) -> Any:
    from integrations.mt5.bridge.client import BridgeClient

    return BridgeClient(url, secret, login=login, server=server, timeout=timeout)


def ea_api(login: int, server: str, *, command_deadline_seconds: float = 20.0) -> Any:
    """The account's state as its Expert Advisor last pushed it (integrations/mt5/ea/)."""
    from integrations.mt5.ea.store import store_get
    from integrations.mt5.ea.terminal_api import EaTerminalApi

    return EaTerminalApi(
        login=login, server=server, store=store_get(), command_deadline_seconds=command_deadline_seconds
    )
