"""Benchmark of the MT5 gateway paths: `.venv/bin/python bench/bench_gateway.py`.

Starts a simulated bridge server (a subprocess on 127.0.0.1, free port), provisions one account with 20 open
positions on it and the same in-process, then measures calls/s of:

* the raw function API in-process (SimulatedTerminal) and over the bridge (BridgeClient, keep-alive HTTP);
* the same calls through TerminalGateway (mapping to Decimal/aware datetimes) on both;
* through ManagedGateway (session + circuit breaker with an in-memory store) in-process.

Single client thread, best of 3 short runs; figures depend on the machine. No Django is imported. No assertions.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Imported after the path fix so the script runs from any directory.
from integrations.mt5.bridge.client import BridgeClient
from integrations.mt5.circuit import CircuitBreaker, MemoryBreakerStore
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.simulated import SimulatedTerminal
from integrations.mt5.terminal import TerminalGateway

ROOT = Path(__file__).resolve().parents[1]
LOGIN = 8001
SERVER = "Bench-Sim"
PASSWORD = "bench-pass"  # noqa: S105 - a simulated account
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
SECONDS = 0.5  # per measurement; the best of ROUNDS is reported
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_bridge(secret: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own script
        [
            sys.executable,
            str(ROOT / "integrations/mt5/bridge/server.py"),
            "--backend",
            "simulated",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        env={**os.environ, "MT5_BRIDGE_SECRET": secret},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=1):  # noqa: S310 - loopback health check
                return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the bridge server did not start") from None
            time.sleep(0.1)


def provision(api: Any) -> None:
    for index in range(20):
        symbol = SYMBOLS[index % len(SYMBOLS)]
        api.sim_set_market_open(symbol, True)
        api.sim_open_manual(symbol, "buy" if index % 2 else "sell", 0.1, comment=f"bench-{index}")


def rate(function: Callable[[], Any]) -> tuple[float, float]:
    """(calls per second, microseconds per call): the best of ROUNDS runs of about SECONDS each."""
    function()  # warm up (connections, caches)
    best = 0.0
    for _ in range(ROUNDS):
        count = 0
        started = time.perf_counter()
        deadline = started + SECONDS
        while True:
            for _ in range(20):
                function()
            count += 20
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - started))
    return best, 1e6 / best


def main() -> None:
    secret = secrets.token_hex(16)
    process, url = start_bridge(secret)
    try:
        local = SimulatedTerminal(login=LOGIN, server=SERVER, password=PASSWORD)
        local.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        provision(local)

        remote = BridgeClient(url, secret, login=LOGIN, server=SERVER, timeout=10)
        remote.sim_create_account(password=PASSWORD)
        remote.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        provision(remote)
        assert len(local.positions_get()) == len(remote.positions_get()) == 20

        gateways = {}
        for name, api in (("in-process", local), ("bridge", remote)):
            gateway = TerminalGateway(
                api, login=LOGIN, password=PASSWORD, server=SERVER, server_utc_offset=7200
            )
            gateway.connect()
            gateways[name] = gateway
        managed = ManagedGateway(
            gateways["in-process"],
            account_key="bench",
            breaker=CircuitBreaker("bench", store=MemoryBreakerStore()),
        )

        rows: list[tuple[str, str, float, float]] = []
        for path, api in (("raw API, in-process", local), ("raw API, bridge", remote)):
            rows.append((path, "account_info()", *rate(api.account_info)))
            rows.append((path, "positions_get() [20]", *rate(api.positions_get)))
            rows.append((path, "symbol_info_tick()", *rate(partial(api.symbol_info_tick, "EURUSD"))))
        for name, gateway in gateways.items():
            path = f"TerminalGateway, {name}"
            rows.append((path, "account()", *rate(gateway.account)))
            rows.append((path, "positions() [20]", *rate(gateway.positions)))
            rows.append((path, "tick()", *rate(partial(gateway.tick, "EURUSD"))))
        path = "ManagedGateway, in-process"
        rows.append((path, "account()", *rate(managed.account)))
        rows.append((path, "positions() [20]", *rate(managed.positions)))
        rows.append((path, "tick()", *rate(partial(managed.tick, "EURUSD"))))

        print(
            f"MT5 gateway paths, single thread, best of {ROUNDS} x {SECONDS} s (bridge: subprocess on {url})"
        )
        print(f"{'path':<30} {'call':<22} {'calls/s':>10} {'µs/call':>10}")
        print("-" * 75)
        for path, call, per_second, micros in rows:
            print(f"{path:<30} {call:<22} {per_second:>10,.0f} {micros:>10,.1f}")
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
