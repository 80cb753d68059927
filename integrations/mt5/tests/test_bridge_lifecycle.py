"""The bridge owns its terminal's lifecycle (issue 9 item 5): a client's close, timeout or shutdown drops only its own
HTTP connection; the terminal stays attached for every other process that uses the same bridge."""

import pytest

from integrations.mt5 import constants as c
from integrations.mt5.bridge.client import BridgeClient
from integrations.mt5.bridge.server import NativeBackend, SimulatedBackend
from integrations.mt5.circuit import Backoff, CircuitBreaker, MemoryBreakerStore
from integrations.mt5.errors import GatewayTimeout
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.simulated import SimulatedTerminal, TerminalRegistry
from integrations.mt5.terminal import TerminalGateway
from integrations.mt5.tests import fakes
from integrations.mt5.types import Side, TradeRequest

SECRET = "lifecycle-secret"
LOGIN, SERVER, PASSWORD = 6101, "Sim-Shared", "Sh4red-Term!"


@pytest.fixture
def registry() -> TerminalRegistry:
    registry = TerminalRegistry()
    registry.create_account(LOGIN, server=SERVER, password=PASSWORD, balance=50_000, swaps=False)
    return registry


@pytest.fixture
def bridge(registry):
    with fakes.running_bridge(SimulatedBackend(registry=registry), SECRET) as server:
        yield server


def gateway_for(bridge, *, name: str, timeout: float) -> ManagedGateway:
    """One worker process's view of the account: its own BridgeClient, gateway and (here in-memory) breaker."""
    api = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER, timeout=timeout)
    terminal = TerminalGateway(api, login=LOGIN, password=PASSWORD, server=SERVER, server_utc_offset=7200)
    breaker = CircuitBreaker(name, store=MemoryBreakerStore(), failure_threshold=3, reset_seconds=30)
    return ManagedGateway(terminal, account_key=name, breaker=breaker, backoff=Backoff(base=0.01, cap=0.01))


def close_request(gateway: ManagedGateway, position) -> TradeRequest:
    sell = position.side is Side.BUY
    tick = gateway.tick(position.symbol)
    return TradeRequest(
        action=c.TRADE_ACTION_DEAL,
        symbol=position.symbol,
        volume=position.volume,
        type=c.ORDER_TYPE_SELL if sell else c.ORDER_TYPE_BUY,
        price=tick.bid if sell else tick.ask,
        deviation=20,
        magic=990_001,
        comment="close",
        type_filling=c.ORDER_FILLING_IOC,
        position=position.ticket,
    )


def test_one_client_timing_out_and_closing_leaves_the_terminal_to_the_other(bridge, registry):
    terminal: SimulatedTerminal = registry.get(LOGIN, SERVER)
    tickets = [terminal.sim_open_manual("EURUSD", "buy", "0.5", comment=f"p{i}") for i in range(2)]
    impatient = gateway_for(bridge, name="worker-a", timeout=0.3)
    steady = gateway_for(bridge, name="worker-b", timeout=10)
    assert {p.ticket for p in impatient.positions()} == set(tickets)
    assert {p.ticket for p in steady.positions()} == set(tickets)

    terminal.sim_set_latency("positions_get", 1.0)
    with pytest.raises(GatewayTimeout):
        impatient.positions()  # its client gives up, the gateway drops its link...
    impatient.close()  # ...and the worker closes its gateway for good (shutdown on its BridgeClient)
    terminal.sim_set_latency("positions_get", 0.0)

    # The other worker never notices: same terminal, still attached, and it can close positions.
    assert not impatient.is_connected
    assert steady.account().login == LOGIN
    positions = steady.positions()
    assert {p.ticket for p in positions} == set(tickets)
    for position in positions:
        result = steady.order_send(close_request(steady, position))
        assert result.retcode == c.TRADE_RETCODE_DONE
    assert steady.positions() == ()
    assert terminal.positions_total() == 0
    assert steady.breaker.state.failures == 0


def test_client_shutdown_never_reaches_the_bridge(bridge, registry):
    api = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER, timeout=5)
    assert api.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is True
    calls = bridge.calls
    assert api.shutdown() is True
    assert api.last_error() == (1, "Success")
    assert bridge.calls == calls  # answered locally: no request was sent
    assert api._local.connection is None  # only its own HTTP connection is gone
    other = BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER, timeout=5)
    assert other.account_info().login == LOGIN  # the terminal is still attached (no initialize needed)


def test_a_shutdown_request_from_an_old_client_is_answered_by_the_bridge(bridge, registry):
    from integrations.mt5.tests.test_bridge import raw_post

    BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER).initialize(login=LOGIN, password=PASSWORD)
    status, body = raw_post(bridge, {"call": "shutdown", "login": LOGIN, "server": SERVER}, secret=SECRET)
    assert status == 200
    assert body["result"] is True
    assert registry.get(LOGIN, SERVER).call_counts["shutdown"] == 0
    assert BridgeClient(bridge.url, SECRET, login=LOGIN, server=SERVER).account_info().login == LOGIN


def test_a_native_bridge_shuts_its_terminal_down_only_when_it_stops(monkeypatch):
    import sys

    module = fakes.ScriptedApi()
    monkeypatch.setitem(sys.modules, "MetaTrader5", module)
    backend = NativeBackend()
    with fakes.running_bridge(backend, SECRET) as server:
        api = BridgeClient(server.url, SECRET, login=5001, server="Broker-Live", timeout=5)
        assert api.initialize() is True
        assert api.shutdown() is True
        assert api.account_info() is not None
        assert "shutdown" not in module.names()
    backend.close()  # what the CLI does when the bridge stops
    assert module.names()[-1] == "shutdown"
