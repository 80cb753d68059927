"""The gateway contract: the same assertions against every backend, through get_gateway (the composition point).

* `simulated` — the in-process simulated terminal (the simulator's default registry);
* `bridge` — a REAL bridge server on 127.0.0.1 (free port, simulated backend, its own registry) and BridgeClient;
* `native` — the official module against a real terminal; only with MT5_NATIVE_TEST=1 on a Windows host, with
  MT5_NATIVE_LOGIN / MT5_NATIVE_PASSWORD / MT5_NATIVE_SERVER (a DEMO account: the suite opens and closes a
  minimum-volume position) and optionally MT5_NATIVE_PATH / MT5_NATIVE_PORTABLE=1.

Tests that script the market or inject faults need the simulator's `sim_*` helpers and skip on native.
"""

import itertools
import os
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from integrations.mt5 import constants as c
from integrations.mt5.bridge.client import BridgeClient
from integrations.mt5.bridge.server import SimulatedBackend
from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayCircuitOpen,
    GatewayInvalidRequest,
    GatewayTimeout,
    GatewayTradingDisabled,
    GatewayUnavailable,
)
from integrations.mt5.selection import ConnectionConfig, get_gateway, reset_gateways
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.simulated import SimClock, TerminalRegistry, default_registry
from integrations.mt5.tests.fakes import running_bridge
from integrations.mt5.types import MarginMode, Side, TradeRequest

SECRET = "contract-bridge-secret"
PASSWORD = "contract-Passw0rd"
SERVER = "Contract-Sim"
MAGIC = 990001
SERVER_OFFSET = timedelta(hours=2)  # the simulator's default server clock
NATIVE = os.environ.get("MT5_NATIVE_TEST") == "1"
_logins = itertools.count(71_000)

BACKENDS = [
    "simulated",
    "bridge",
    pytest.param(
        "native", marks=pytest.mark.skipif(not NATIVE, reason="set MT5_NATIVE_TEST=1 on a Windows host")
    ),
]


@dataclass
class Rig:
    backend: str
    gateway: ManagedGateway
    config: ConnectionConfig
    driver: Any  # has the simulator's sim_* helpers; None on native

    def simulator(self) -> Any:
        if self.driver is None:
            pytest.skip("needs the simulator's sim_* helpers")
        return self.driver

    @property
    def symbol(self) -> str:
        return os.environ.get("MT5_NATIVE_SYMBOL", "EURUSD") if self.backend == "native" else "EURUSD"


@pytest.fixture(scope="module")
def bridge_server():
    with running_bridge(SimulatedBackend(TerminalRegistry()), SECRET) as server:
        yield server


def _simulated_account(login: int) -> tuple[ConnectionConfig, Any]:
    terminal = default_registry().create_account(
        login, server=SERVER, password=PASSWORD, balance=10_000, margin_mode="hedging"
    )
    config = ConnectionConfig(
        account_key=f"contract-{uuid.uuid4().hex}",
        backend="simulated",
        login=login,
        server=SERVER,
        password=PASSWORD,
        server_utc_offset_seconds=int(
            SERVER_OFFSET.total_seconds()
        ),  # configured; measuring has its own test
    )
    return config, terminal


def _bridge_account(login: int, server) -> tuple[ConnectionConfig, Any]:
    driver = BridgeClient(server.url, SECRET, login=login, server=SERVER, timeout=5)
    driver.sim_create_account(password=PASSWORD, balance=10_000, margin_mode="hedging")
    config = ConnectionConfig(
        account_key=f"contract-{uuid.uuid4().hex}",
        backend="bridge",
        login=login,
        server=SERVER,
        password=PASSWORD,
        bridge_url=server.url,
        bridge_secret=SECRET,
        server_utc_offset_seconds=int(
            SERVER_OFFSET.total_seconds()
        ),  # configured; measuring has its own test
    )
    return config, driver


def _native_account() -> ConnectionConfig:
    return ConnectionConfig(
        account_key=f"contract-{uuid.uuid4().hex}",
        backend="native",
        login=int(os.environ["MT5_NATIVE_LOGIN"]),
        server=os.environ["MT5_NATIVE_SERVER"],
        password=os.environ["MT5_NATIVE_PASSWORD"],
        path=os.environ.get("MT5_NATIVE_PATH") or None,
        portable=os.environ.get("MT5_NATIVE_PORTABLE") == "1",
    )


@pytest.fixture(params=BACKENDS)
def rig(request):
    reset_gateways()
    login = next(_logins)
    if request.param == "simulated":
        config, driver = _simulated_account(login)
    elif request.param == "bridge":
        config, driver = _bridge_account(login, request.getfixturevalue("bridge_server"))
    else:
        config, driver = _native_account(), None
    if driver is not None:
        # A deterministic, open market whatever the weekday.
        driver.sim_set_market_open("EURUSD", True)
        driver.sim_set_price("EURUSD", 1.085, 1.0851)
    yield Rig(request.param, get_gateway(config), config, driver)
    reset_gateways()
    if request.param == "simulated":
        default_registry().remove(login, SERVER)
    elif request.param == "bridge":
        driver.sim_remove_account()


def market_request(rig: Rig, *, side: Side, volume: Decimal, position: int = 0, comment: str = "contract"):
    tick = rig.gateway.tick(rig.symbol)
    return TradeRequest(
        action=c.TRADE_ACTION_DEAL,
        symbol=rig.symbol,
        volume=volume,
        type=c.ORDER_TYPE_BUY if side is Side.BUY else c.ORDER_TYPE_SELL,
        price=tick.ask if side is Side.BUY else tick.bid,
        deviation=20,
        magic=MAGIC,
        comment=comment,
        type_filling=c.ORDER_FILLING_FOK,
        position=position,
    )


def assert_same_instant_in_server_zone(rig: Rig, moment: datetime, server_time: datetime) -> None:
    assert moment.tzinfo is UTC
    assert server_time == moment
    if rig.backend != "native":
        assert server_time.utcoffset() == SERVER_OFFSET


# ---------------------------------------------------------------------- connect and account


def test_connect_logs_in_and_verifies_the_account(rig):
    rig.gateway.connect()
    assert rig.gateway.is_connected
    state = rig.gateway.account()
    assert state.login == rig.config.login
    assert state.server == rig.config.server


def test_a_wrong_password_is_auth_failed(rig):
    if rig.backend == "native":
        pytest.skip("not against a real broker: repeated bad logins can lock the account")
    bad = replace(rig.config, account_key=f"bad-{uuid.uuid4().hex}", password="nope")
    with pytest.raises(GatewayAuthFailed) as caught:
        get_gateway(bad).connect()
    assert caught.value.code == c.RES_E_AUTH_FAILED
    assert "nope" not in str(caught.value)


def test_account_maps_to_decimal_money_and_aware_times(rig):
    state = rig.gateway.account()
    assert isinstance(state.balance, Decimal)
    assert state.balance.as_tuple().exponent == -state.currency_digits
    assert isinstance(state.margin_mode, MarginMode)
    if rig.backend != "native":
        assert state.balance == Decimal("10000.00")
        assert state.equity == state.balance
        assert state.currency == "USD"
        assert state.leverage == 100
        assert state.margin_mode is MarginMode.HEDGING
    assert abs(state.time - datetime.now(tz=UTC)) < timedelta(seconds=60)


def test_the_offset_is_measured_from_a_tick_seen_arriving(rig):
    gw = get_gateway(
        replace(rig.config, account_key=f"measure-{uuid.uuid4().hex}", server_utc_offset_seconds=None)
    )
    gw.tick("EURUSD")
    time.sleep(1.5)  # a live EURUSD ticks more often than that (the simulator: every second)
    gw.tick("EURUSD")
    assert gw.server_utc_offset is not None
    if rig.backend != "native":
        assert gw.server_utc_offset == int(SERVER_OFFSET.total_seconds())
    state = gw.account()
    assert state.server_utc_offset_known
    assert_same_instant_in_server_zone(rig, state.time, state.server_time)


# ---------------------------------------------------------------------- trading round trip


def test_open_and_close_a_position_with_position_ticket_and_magic(rig):
    gw = rig.gateway
    since = datetime.now(tz=UTC) - timedelta(minutes=5)
    volume = gw.symbol(rig.symbol).volume_min
    opened = gw.order_send(market_request(rig, side=Side.BUY, volume=volume))
    assert opened.retcode == c.TRADE_RETCODE_DONE
    assert opened.deal > 0
    assert opened.volume == volume
    (position,) = [p for p in gw.positions(symbol=rig.symbol) if p.ticket == opened.order]
    assert position.side is Side.BUY
    assert position.magic == MAGIC
    assert position.comment == "contract"
    assert position.volume == volume
    assert position.price_open == opened.price
    assert position.sl is None
    assert position.tp is None
    assert position.reason == c.POSITION_REASON_EXPERT
    assert_same_instant_in_server_zone(rig, position.time, position.server_time)
    assert gw.positions(ticket=position.ticket)[0].identifier == position.identifier

    closed = gw.order_send(
        market_request(rig, side=Side.SELL, volume=volume, position=position.ticket, comment="close")
    )
    assert closed.retcode == c.TRADE_RETCODE_DONE
    # With `position` the sell closed the buy; without it a hedging account would now hold two positions.
    assert [p for p in gw.positions(symbol=rig.symbol) if p.ticket == position.ticket] == []

    deals = gw.deals_for_position(position_id=position.identifier)
    assert [d.entry for d in deals] == [c.DEAL_ENTRY_IN, c.DEAL_ENTRY_OUT]
    assert [d.magic for d in deals] == [MAGIC, MAGIC]
    assert [d.reason for d in deals] == [c.DEAL_REASON_EXPERT, c.DEAL_REASON_EXPERT]
    assert deals[1].price == closed.price
    assert isinstance(deals[1].profit, Decimal)
    for deal in deals:
        assert_same_instant_in_server_zone(rig, deal.time, deal.server_time)
    in_range = gw.deals(since=since, until=datetime.now(tz=UTC) + timedelta(minutes=5))
    assert {d.ticket for d in deals} <= {d.ticket for d in in_range}


def test_rejections_come_back_as_retcodes(rig):
    gw = rig.gateway
    bad_volume = gw.order_send(market_request(rig, side=Side.BUY, volume=Decimal("0.001")))
    assert bad_volume.retcode == c.TRADE_RETCODE_INVALID_VOLUME
    assert bad_volume.deal == 0
    request = market_request(rig, side=Side.BUY, volume=Decimal("0.01"))
    unknown = gw.order_send(replace(request, symbol="NOSUCHSYMBOL"))
    assert unknown.retcode not in (c.TRADE_RETCODE_DONE, c.TRADE_RETCODE_PLACED)
    if rig.backend != "native":
        assert unknown.retcode == c.TRADE_RETCODE_INVALID
    assert gw.positions() == ()


def test_manual_positions_map_sl_tp_and_reason(rig):
    sim = rig.simulator()
    ticket = sim.sim_open_manual("EURUSD", "sell", 0.2, sl=1.095, comment="by hand")
    (position,) = rig.gateway.positions(ticket=ticket)
    assert position.side is Side.SELL
    assert position.volume == Decimal("0.20")
    assert position.sl == Decimal("1.09500")
    assert position.tp is None
    assert position.reason == c.POSITION_REASON_CLIENT
    assert position.magic == 0
    assert position.price_open == Decimal("1.08500")  # sells open at bid


# ---------------------------------------------------------------------- reads


def test_empty_results_are_empty(rig):
    gw = rig.gateway
    future = datetime.now(tz=UTC) + timedelta(days=400)
    assert gw.positions(symbol="GBPUSD") == ()
    assert gw.positions(ticket=987_654_321) == ()
    assert gw.deals_for_position(position_id=987_654_321) == ()
    assert gw.deals(since=future, until=future + timedelta(days=1)) == ()


def test_unknown_symbol_reads_are_invalid_requests(rig):
    with pytest.raises(GatewayInvalidRequest):
        rig.gateway.symbol("NOSUCHSYMBOL")
    with pytest.raises(GatewayInvalidRequest):
        rig.gateway.tick("NOSUCHSYMBOL")


def test_symbol_tick_and_bars(rig):
    gw = rig.gateway
    spec = gw.symbol(rig.symbol)
    tick = gw.tick(rig.symbol)
    assert tick.bid.as_tuple().exponent == -spec.digits
    assert tick.ask >= tick.bid
    if rig.backend != "native":
        assert (tick.bid, tick.ask) == (Decimal("1.08500"), Decimal("1.08510"))
        assert spec.point == Decimal("0.00001")
    assert_same_instant_in_server_zone(rig, tick.time, tick.server_time)
    bars = gw.bars(symbol=rig.symbol, timeframe=c.TIMEFRAME_H1, count=5)
    assert len(bars) == 5
    assert [b.time for b in bars] == sorted(b.time for b in bars)
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


def test_health(rig):
    health = rig.gateway.health(symbols=[rig.symbol])
    assert health.error == ""
    assert health.connected
    assert isinstance(health.ping_ms, Decimal)
    assert health.newest_tick_age_seconds is not None
    if rig.backend != "native":
        assert health.trade_allowed
        assert health.newest_tick_age_seconds < 5


# ---------------------------------------------------------------------- faults → typed errors


def test_ipc_timeout_is_gateway_timeout_and_the_next_call_reconnects(rig):
    sim = rig.simulator()
    rig.gateway.connect()
    sim.sim_inject_fault("positions_get", [c.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout"])
    with pytest.raises(GatewayTimeout) as caught:
        rig.gateway.positions()
    assert caught.value.code == c.RES_E_INTERNAL_FAIL_TIMEOUT
    assert not rig.gateway.is_connected
    assert rig.gateway.positions() == ()
    assert rig.gateway.is_connected


def test_a_dropped_link_is_unavailable_then_reconnects(rig):
    sim = rig.simulator()
    rig.gateway.connect()
    sim.sim_drop_connection()
    with pytest.raises(GatewayUnavailable) as caught:
        rig.gateway.account()
    assert caught.value.code == c.RES_E_INTERNAL_FAIL_CONNECT
    assert rig.gateway.account().login == rig.config.login


def test_order_send_timeout_that_executed_leaves_a_position_to_reconcile(rig):
    sim = rig.simulator()
    request = market_request(rig, side=Side.BUY, volume=Decimal("0.10"), comment="ambiguous")
    sim.sim_inject_fault("order_send", [c.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout"], 1, executed=True)
    with pytest.raises(GatewayTimeout):
        rig.gateway.order_send(request)
    (position,) = rig.gateway.positions(symbol="EURUSD")
    assert position.comment == "ambiguous"
    assert position.magic == MAGIC


def test_trading_switched_off(rig):
    sim = rig.simulator()
    sim.sim_set_trade_allowed(False)
    result = rig.gateway.order_send(market_request(rig, side=Side.BUY, volume=Decimal("0.10")))
    assert result.retcode == c.TRADE_RETCODE_CLIENT_DISABLES_AT
    assert rig.gateway.health().trade_allowed is False
    sim.sim_set_trade_allowed(True)
    sim.sim_set_tradeapi_disabled(True)
    with pytest.raises(GatewayTradingDisabled) as caught:
        rig.gateway.order_send(market_request(rig, side=Side.BUY, volume=Decimal("0.10")))
    assert caught.value.code == c.RES_E_AUTO_TRADING_DISABLED


def test_repeated_link_failures_open_the_circuit(rig):
    sim = rig.simulator()
    gw = rig.gateway
    gw.connect()
    threshold = gw.breaker.failure_threshold
    sim.sim_inject_fault("positions_get", [c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection"], threshold)
    for _ in range(threshold):
        with pytest.raises(GatewayUnavailable):
            gw.positions()
    with pytest.raises(GatewayCircuitOpen):
        gw.positions()
    assert "circuit open" in gw.health().error


# ---------------------------------------------------------------------- in-process only: the simulator's clock


def test_the_offset_is_estimated_on_the_simulators_virtual_clock():
    reset_gateways()
    login = next(_logins)
    clock = SimClock.fixed(datetime(2026, 3, 2, 9, 30, tzinfo=UTC), server_utc_offset=timedelta(hours=3))
    default_registry().create_account(login, server=SERVER, password=PASSWORD, clock=clock)
    try:
        gw = get_gateway(
            ConnectionConfig(account_key=f"contract-{login}", backend="simulated", login=login, server=SERVER)
        )
        gw.tick("EURUSD")
        default_registry().get(login, SERVER).sim_advance(5)  # the next sync, five virtual seconds later
        gw.tick("EURUSD")
        state = gw.account()
        assert gw.server_utc_offset == 3 * 3600
        assert state.time == datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)
        assert state.server_time.utcoffset() == timedelta(hours=3)
        assert gw.tick("EURUSD").time == datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)
    finally:
        reset_gateways()
        default_registry().remove(login, SERVER)
