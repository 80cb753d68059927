"""Benchmark of the simulated bridge's saved state: `.venv/bin/python bench/bench_sim_persistence.py`.

What a simulated terminal costs to keep on disk (integrations/mt5/simulated/persistence.py): one atomic save (pickle
under the terminal's lock, write, fsync, rename) and one restore, for terminals with more or fewer positions, deals
and bars, plus how long a whole registry of demo-sized terminals takes to save (the bridge does that every
--save-seconds). Best of 5 runs; figures depend on the machine and its disk. No Django. No assertions.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integrations.mt5.simulated import SimClock, TerminalRegistry
from integrations.mt5.simulated.persistence import TerminalStateStore

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def _terminal(registry: TerminalRegistry, login: int, *, positions: int, hours: int):
    terminal = registry.create_account(
        login, server="Bench", balance=10_000_000, clock=SimClock.fixed(START), seed=login
    )
    terminal.initialize()
    symbols = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
    for i in range(positions):
        terminal.sim_open_manual(symbols[i % 4], "buy" if i % 2 else "sell", "0.1")
        if i % 3 == 0:
            terminal.sim_close_manual(terminal.positions_get()[0].ticket)
    terminal.sim_advance(hours * 3600)  # bars accumulate on the symbols held
    terminal.positions_get()
    return terminal


def _best(action, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        store = TerminalStateStore(directory)
        for positions, hours in ((0, 0), (20, 1), (100, 8), (300, 24)):
            registry = TerminalRegistry()
            terminal = _terminal(registry, 9000 + positions, positions=positions, hours=hours)
            save = _best(lambda terminal=terminal: store.save(terminal))
            size = store.path_for(terminal.login_id, terminal.server).stat().st_size
            load = _best(lambda: store.load_into(TerminalRegistry()))
            store.forget(terminal.login_id, terminal.server)
            deals = len(terminal.history_deals_get(0, 4_000_000_000))
            rows.append((f"{len(terminal.positions_get())} open, {deals} deals, {hours} h", size, save, load))
        registry = TerminalRegistry()
        for login in range(10):
            _terminal(registry, 9100 + login, positions=20, hours=1)
        save_all = _best(lambda: store.save_all(registry))
    print(f"{'terminal':34} {'file KB':>9} {'save ms':>9} {'load ms':>9}")
    for name, size, save, load in rows:
        print(f"{name:34} {size / 1024:9.0f} {save * 1000:9.1f} {load * 1000:9.1f}")
    print(f"{'save_all: 10 demo terminals':34} {'':>9} {save_all * 1000:9.1f}")


if __name__ == "__main__":
    main()
