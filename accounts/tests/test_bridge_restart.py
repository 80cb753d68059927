"""A restart of the simulated-terminal bridge in the middle of the demo looks like a reconnect (issue 9 item 6): the
next syncs see the same tickets and money, and no guard moves (no alert, no liquidation).

Before, the restarted bridge served every account as a brand-new one (default balance, empty history), which the
guards read as a deposit followed by a large loss and liquidated the account within two syncs."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from accounts.selectors import trading_account_gateway
from accounts.services import trading_account_create
from guards.models import CloseIntent, GuardAlert, GuardState
from guards.services.dispatch import dispatcher_override
from integrations.mt5 import reset_gateways
from integrations.mt5.bridge.client import BridgeClient
from pipeline.services import account_sync
from reconciliation.models import AccountSync, LivePosition

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-bridge-secret"  # config/settings/test.py
LOGIN, SERVER, PASSWORD = 7301, "Restart-Demo", "Rest4rt-Pass!"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BridgeProcess:
    """`make run`'s bridge process (Procfile.dev), on a free port, keeping its terminals under `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.port = _free_port()
        self.state_dir = state_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [
                *(sys.executable, "-m", "integrations.mt5.bridge.server", "--backend", "simulated"),
                *("--port", str(self.port), "--state-dir", str(self.state_dir), "--log-level", "WARNING"),
            ],
            cwd=REPO,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MT5_BRIDGE_SECRET": SECRET},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(self.url, timeout=1):  # noqa: S310 - our bridge
                    return
            except OSError:
                assert self.process.poll() is None, "the bridge died at start"
                assert time.monotonic() < deadline, "the bridge did not come up"
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(15)


@pytest.fixture
def bridge(tmp_path):
    process = BridgeProcess(tmp_path / "simulated-terminals")
    process.start()
    yield process
    process.stop()
    reset_gateways()


@pytest.fixture
def dispatched():
    asked: list[tuple[str, dict[str, Any]]] = []

    class _Recorder:
        def liquidation(self, **kwargs: Any) -> None:
            asked.append(("liquidation", kwargs))

        def closes(self, **kwargs: Any) -> None:
            asked.append(("closes", kwargs))

    with dispatcher_override(_Recorder()):
        yield asked


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_bridge_restart_mid_demo_moves_no_guard(db, trader, bridge, dispatched, stop):
    market = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER)
    market.sim_create_account(balance="25000", password=PASSWORD, margin_mode="hedging", seed=LOGIN)
    tickets = sorted(market.sim_open_manual("EURUSD", "buy", "0.2", comment=f"t{i}") for i in range(3))
    account = trading_account_create(
        owner=trader,
        login=LOGIN,
        server=SERVER,
        password=PASSWORD,
        backend="bridge",
        connection={"bridge_url": bridge.url},
    )
    gateway = trading_account_gateway(account=account)
    for _ in range(2):
        assert account_sync(account=account, gateway=gateway).ok

    bridge.stop(stop)
    bridge.start()

    for _ in range(3):
        assert account_sync(account=account, gateway=gateway).ok
    account.refresh_from_db()
    assert sorted(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == tickets
    assert account.latest_snapshot.balance == Decimal("25000.00")
    state = GuardState.objects.get(account=account)
    assert (state.drawdown_level, state.daily_loss_level, state.status) == ("normal", "normal", "normal")
    assert list(GuardAlert.objects.filter(account=account).values_list("kind", flat=True)) == []
    assert dispatched == []
    assert not CloseIntent.objects.filter(account=account).exists()
    assert not AccountSync.objects.filter(account=account, ok=False).exists()
