"""Many independent simulated terminals in one process, one per account, keyed by (login, server).

Each terminal has its own lock, market, clock (unless one is shared on purpose) and fault plan, so accounts never
see each other's state. The registry itself is thread-safe.
"""

import threading
from collections.abc import Iterator
from typing import Any

from integrations.mt5.simulated.terminal import DEFAULT_SERVER, SimulatedTerminal


class TerminalRegistry:
    def __init__(self, **defaults: Any) -> None:
        """`defaults` are SimulatedTerminal keyword arguments applied to every account created here."""
        self._lock = threading.Lock()
        self._terminals: dict[tuple[int, str], SimulatedTerminal] = {}
        self._defaults = defaults

    def create_account(
        self, login: int, *, server: str = DEFAULT_SERVER, **options: Any
    ) -> SimulatedTerminal:
        """Open a new simulated account (balance, currency, leverage, margin_mode, password, symbols, clock, ...)."""
        key = (login, server)
        with self._lock:
            if key in self._terminals:
                raise ValueError(f"account {login}@{server} exists")
            terminal = SimulatedTerminal(login=login, server=server, **{**self._defaults, **options})
            self._terminals[key] = terminal
            return terminal

    def adopt(self, terminal: SimulatedTerminal) -> None:
        """Take in an existing terminal (restored from saved state), replacing any of the same account."""
        with self._lock:
            self._terminals[(terminal.login_id, terminal.server)] = terminal

    def get(self, login: int, server: str = DEFAULT_SERVER) -> SimulatedTerminal:
        with self._lock:
            try:
                return self._terminals[(login, server)]
            except KeyError:
                raise KeyError(f"no simulated account {login}@{server}") from None

    def get_or_create(self, login: int, *, server: str = DEFAULT_SERVER, **options: Any) -> SimulatedTerminal:
        """The account's terminal, created with `options` on first use (options are ignored afterwards)."""
        key = (login, server)
        with self._lock:
            terminal = self._terminals.get(key)
            if terminal is None:
                terminal = SimulatedTerminal(login=login, server=server, **{**self._defaults, **options})
                self._terminals[key] = terminal
            return terminal

    def remove(self, login: int, server: str = DEFAULT_SERVER) -> None:
        with self._lock:
            self._terminals.pop((login, server), None)

    def clear(self) -> None:
        with self._lock:
            self._terminals.clear()

    def accounts(self) -> list[tuple[int, str]]:
        with self._lock:
            return sorted(self._terminals)

    def __len__(self) -> int:
        with self._lock:
            return len(self._terminals)

    def __iter__(self) -> Iterator[SimulatedTerminal]:
        with self._lock:
            return iter(list(self._terminals.values()))

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._terminals


_default_registry = TerminalRegistry()


def default_registry() -> TerminalRegistry:
    """The process-wide registry (what dev/demo wiring uses; tests should build their own)."""
    return _default_registry


def terminal(login: int, server: str = DEFAULT_SERVER) -> SimulatedTerminal:
    """The process-wide registry's terminal for (login, server). Created on first use with the defaults (10 000 USD,
    1:100, hedging) and *no* password, so any password logs in; create the account beforehand with
    `default_registry().create_account(...)` to choose balance, password, margin mode or a virtual clock."""
    return _default_registry.get_or_create(login, server=server, password=None)
