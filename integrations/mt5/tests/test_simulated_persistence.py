"""Simulated terminals that survive a bridge restart (issue 9 item 6): the whole trade-server and market state is
saved atomically under a directory and restored, so a restart looks like a reconnect, not like a new account."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.mt5 import constants as c
from integrations.mt5.bridge.client import BridgeClient
from integrations.mt5.bridge.server import SimulatedBackend
from integrations.mt5.simulated import SimClock, TerminalRegistry
from integrations.mt5.simulated.persistence import TerminalStateStore
from integrations.mt5.tests import fakes

REPO = Path(__file__).resolve().parents[3]
SECRET = "persistence-secret"
LOGIN, SERVER, PASSWORD = 6201, "Sim-Persist", "Pers1st-Pass!"


def _busy_terminal(registry: TerminalRegistry):
    clock = SimClock.fixed(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), server_utc_offset=3 * 3600)
    terminal = registry.create_account(
        LOGIN, server=SERVER, password=PASSWORD, balance=20_000, clock=clock, seed=LOGIN
    )
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    terminal.sim_deposit("-5000", "Withdrawal")
    terminal.sim_credit("750")
    buys = [terminal.sim_open_manual("EURUSD", "buy", "0.3", comment=f"b{i}") for i in range(2)]
    terminal.sim_advance(90)
    terminal.sim_close_manual(buys[0])
    tick = terminal.symbol_info_tick("GBPUSD")
    pending = terminal.order_send(
        {
            "action": c.TRADE_ACTION_PENDING,
            "symbol": "GBPUSD",
            "volume": 0.2,
            "type": c.ORDER_TYPE_BUY_LIMIT,
            "price": round(tick.ask - 0.0100, 5),
            "type_time": c.ORDER_TIME_GTC,
        }
    )
    assert pending.retcode == c.TRADE_RETCODE_PLACED
    terminal.sim_advance(30)
    return terminal


def _picture(terminal) -> dict:
    """Everything a sync or a guard could read."""
    account = terminal.account_info()
    return {
        "balance": account.balance,
        "credit": account.credit,
        "equity": account.equity,
        "positions": terminal.positions_get(),
        "orders": terminal.orders_get(),
        "deals": terminal.history_deals_get(0, 4_000_000_000),
        "server_time": terminal.sim_server_time(),
        "eurusd": terminal.symbol_info_tick("EURUSD"),
    }


def test_a_restored_terminal_is_the_same_terminal(tmp_path):
    original = _busy_terminal(TerminalRegistry())
    store = TerminalStateStore(tmp_path)
    store.save(original)
    assert [
        p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"
    ] == []  # written through a temporary file

    registry = TerminalRegistry()
    assert store.load_into(registry) == 1
    restored = registry.get(LOGIN, SERVER)
    before = _picture(original)
    assert _picture(restored) == before
    assert before["credit"] == 750.0
    assert len(before["deals"]) == 6  # deposit, withdrawal, credit, two opens, one close
    assert len(before["positions"]) == 1
    assert len(before["orders"]) == 1
    # Still logged in (only the bridge process restarted), and the price walk goes on exactly as it would have.
    original.sim_advance(120)
    restored.sim_advance(120)
    assert restored.symbol_info_tick("EURUSD") == original.symbol_info_tick("EURUSD")
    # Ticket counters continue: a new position gets the ticket the original would have given, no reuse.
    ticket = restored.sim_open_manual("USDJPY", "sell", "0.1")
    assert ticket == original.sim_open_manual("USDJPY", "sell", "0.1")
    assert ticket not in {d.ticket for d in before["deals"]} | {p.ticket for p in before["positions"]}


def test_faults_do_not_survive_a_restart(tmp_path):
    registry = TerminalRegistry()
    terminal = registry.create_account(LOGIN, server=SERVER, password=PASSWORD, clock=SimClock.fixed())
    terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    terminal.sim_inject_fault("account_info", (-10005, "IPC timeout"), times=5)
    store = TerminalStateStore(tmp_path)
    store.save(terminal)
    restored = TerminalRegistry()
    store.load_into(restored)
    assert restored.get(LOGIN, SERVER).account_info().login == LOGIN


def test_an_unreadable_file_is_set_aside_and_the_others_load(tmp_path, caplog):
    registry = TerminalRegistry()
    registry.create_account(LOGIN, server=SERVER, clock=SimClock.fixed())
    store = TerminalStateStore(tmp_path)
    store.save(registry.get(LOGIN, SERVER))
    broken = store.path_for(999, "Broken")
    broken.write_bytes(b"not a pickle")
    fresh = TerminalRegistry()
    assert store.load_into(fresh) == 1
    assert fresh.accounts() == [(LOGIN, SERVER)]
    assert not broken.exists()
    assert broken.with_suffix(".unreadable").exists()
    assert "unreadable" in caplog.text


def test_the_bridge_saves_after_every_trade_and_restores_at_start(tmp_path):
    store = TerminalStateStore(tmp_path)
    with fakes.running_bridge(
        SimulatedBackend(TerminalRegistry(), store=store, save_seconds=0), SECRET
    ) as bridge:
        client = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER)
        client.sim_create_account(balance=12_345, password=PASSWORD)
        assert client.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        tick = client.symbol_info_tick("EURUSD")
        sent = client.order_send(
            {
                "action": c.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.2,
                "type": c.ORDER_TYPE_BUY,
                "price": tick.ask,
                "deviation": 50,
            }
        )
        assert sent.retcode == c.TRADE_RETCODE_DONE
        # No periodic saver and no clean stop: the trade is on disk because it was saved when it happened.
    registry = TerminalRegistry()
    SimulatedBackend(registry, store=store, save_seconds=0)
    restored = registry.get(LOGIN, SERVER)
    assert [p.ticket for p in restored.positions_get()] == [sent.order]
    assert restored.account_info().balance == 12_345.0


def test_removing_an_account_forgets_its_saved_state(tmp_path):
    store = TerminalStateStore(tmp_path)
    with fakes.running_bridge(
        SimulatedBackend(TerminalRegistry(), store=store, save_seconds=0), SECRET
    ) as bridge:
        client = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER)
        client.sim_create_account(balance=1000)
        assert store.path_for(LOGIN, SERVER).exists()
        client.sim_remove_account()
    assert not store.path_for(LOGIN, SERVER).exists()


# ---------------------------------------------------------------------- the real process, restarted


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_bridge(port: int, state_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "integrations.mt5.bridge.server",
            "--backend",
            "simulated",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--save-seconds",
            "0.5",
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MT5_BRIDGE_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_up(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return
        except OSError:
            assert process.poll() is None, "the bridge died"
            assert time.monotonic() < deadline, "the bridge did not come up"
            time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restarted_bridge_process_serves_the_same_terminals(tmp_path, stop):
    port = _free_port()
    client = BridgeClient(f"http://127.0.0.1:{port}", SECRET, login=LOGIN, server=SERVER, timeout=5)
    process = _start_bridge(port, tmp_path)
    try:
        _wait_up(port, process)
        client.sim_create_account(balance=25_000, password=PASSWORD, seed=3)
        assert client.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        tickets = [client.sim_open_manual("XAUUSD", "buy", "0.1", comment=f"x{i}") for i in range(3)]
        client.sim_close_manual(tickets[0])
        before = (client.account_info().balance, [p.ticket for p in client.positions_get()])
        deals = [d.ticket for d in client.history_deals_get(0, 4_000_000_000)]
        process.send_signal(stop)
        process.wait(15)

        process = _start_bridge(port, tmp_path)
        _wait_up(port, process)
        # The account is still logged in, with the same money, positions and history; new tickets continue.
        assert (client.account_info().balance, [p.ticket for p in client.positions_get()]) == before
        assert [d.ticket for d in client.history_deals_get(0, 4_000_000_000)] == deals
        assert client.sim_open_manual("XAUUSD", "sell", "0.1") > max(deals)
    finally:
        process.terminate()
        process.wait(15)


def test_the_cli_refuses_a_state_directory_for_a_native_bridge(tmp_path):
    result = subprocess.run(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "integrations.mt5.bridge.server",
            "--backend",
            "native",
            "--state-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MT5_BRIDGE_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--state-dir is for --backend simulated" in result.stderr
