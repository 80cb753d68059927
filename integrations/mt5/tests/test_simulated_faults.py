"""SimulatedTerminal fault injection, dropped links, latency, the registry and thread safety."""

import threading
from datetime import UTC, datetime

import pytest

from integrations.mt5.simulated import SimClock, SimulatedTerminal, TerminalRegistry
from integrations.mt5.simulated import registry as registry_module

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
TIMEOUT = (-10005, "IPC timeout")


@pytest.fixture
def mt5():
    terminal = SimulatedTerminal(login=5001, password="pw", clock=SimClock.fixed(START), seed=1)
    assert terminal.initialize()
    terminal.sim_set_price("EURUSD", 1.08500, 1.08510)
    return terminal


def buy(mt5, volume=0.1):
    request = {"action": 1, "symbol": "EURUSD", "volume": volume, "type": 0, "price": 1.0851, "deviation": 20}
    return mt5.order_send(request)


def test_a_fault_fails_the_call_n_times_then_clears(mt5):
    mt5.sim_inject_fault("account_info", TIMEOUT, times=2)
    assert mt5.account_info() is None
    assert mt5.last_error() == TIMEOUT
    assert mt5.account_info() is None
    assert mt5.account_info().login == 5001
    assert mt5.last_error() == (1, "Success")


def test_bool_functions_fail_with_false(mt5):
    mt5.sim_inject_fault("symbol_select", (-1, "Terminal: Call failed"))
    assert mt5.symbol_select("EURUSD", True) is False
    mt5.sim_inject_fault("initialize", (-10003, "IPC initialize failed, MetaTrader 5 x64 not found"))
    assert mt5.initialize() is False
    assert mt5.last_error()[0] == -10003


def test_a_failed_order_send_did_nothing_by_default(mt5):
    mt5.sim_inject_fault("order_send", TIMEOUT)
    assert buy(mt5) is None
    assert mt5.last_error() == TIMEOUT
    assert mt5.positions_get() == ()


def test_an_executed_fault_fills_the_order_but_reports_failure(mt5):
    mt5.sim_inject_fault("order_send", TIMEOUT, executed=True)
    assert buy(mt5) is None
    assert mt5.last_error() == TIMEOUT
    (position,) = mt5.positions_get()  # the order went through although the caller saw a timeout
    assert position.volume == 0.1
    assert len(mt5.history_deals_get(position=position.ticket)) == 1


def test_retcode_faults(mt5):
    mt5.sim_inject_retcode(mt5.TRADE_RETCODE_REQUOTE)
    result = buy(mt5)
    assert (result.retcode, result.deal, result.order) == (10004, 0, 0)
    assert mt5.positions_get() == ()
    mt5.sim_inject_retcode(mt5.TRADE_RETCODE_TIMEOUT, executed=True)
    result = buy(mt5)
    assert (result.retcode, result.deal) == (10012, 0)
    assert mt5.positions_total() == 1  # done anyway
    assert buy(mt5).retcode == 10009


def test_latency_sleeps_per_call():
    slept = []
    terminal = SimulatedTerminal(login=1, clock=SimClock.fixed(START), sleep=slept.append)
    terminal.initialize()
    terminal.sim_set_latency("positions_get", 0.25)
    terminal.positions_get()
    terminal.account_info()
    assert slept == [0.25]
    terminal.sim_set_latency("*", 0.01)
    terminal.account_info()
    assert slept == [0.25, 0.01]


def test_real_latency_with_a_tiny_value(mt5):
    mt5.sim_set_latency("version", 0.001)
    assert mt5.version()[0] == 500


def test_dropped_connection_until_initialize(mt5):
    buy(mt5)
    mt5.sim_drop_connection()
    for call in (mt5.account_info, mt5.positions_get, mt5.terminal_info, mt5.positions_total, mt5.version):
        assert call() is None
        assert mt5.last_error() == (-10004, "No IPC connection")
    assert buy(mt5) is None
    assert mt5.login(5001) is False
    assert mt5.initialize() is True
    assert mt5.positions_total() == 1  # the account is still there


def test_faults_are_counted_per_call_name(mt5):
    mt5.sim_inject_fault("positions_get", TIMEOUT)
    assert mt5.account_info() is not None  # other calls unaffected
    assert mt5.positions_get() is None
    assert mt5.call_counts["positions_get"] == 1


# --- registry --------------------------------------------------------------------------------------------------------


def test_registry_keeps_accounts_independent():
    registry = TerminalRegistry(clock=None, seed=1)
    first = registry.create_account(1001, server="A", password="a", balance=5000, margin_mode="netting")
    second = registry.create_account(
        1002, server="A", password="b", balance=20000, currency="EUR", leverage=30
    )
    assert registry.get(1001, "A") is first
    assert len(registry) == 2
    assert registry.accounts() == [(1001, "A"), (1002, "A")]
    assert first.initialize(login=1001, password="a", server="A")
    assert second.initialize(login=1002, password="b", server="A")
    assert not second.login(1001, password="a", server="A")  # one account per terminal
    first.sim_set_price("EURUSD", 1.2, 1.2001)
    first.sim_open_manual("EURUSD", "buy", 0.1)
    assert second.positions_total() == 0
    assert second.symbol_info_tick("EURUSD").bid != 1.2
    assert (first.account_info().margin_mode, second.account_info().margin_mode) == (0, 2)
    assert (second.account_info().currency, second.account_info().leverage) == ("EUR", 30)
    first.sim_drop_connection()
    assert second.account_info() is not None
    with pytest.raises(ValueError, match="exists"):
        registry.create_account(1001, server="A")
    with pytest.raises(KeyError):
        registry.get(1003, "A")


def test_module_level_terminal_creates_on_demand_and_accepts_any_password():
    terminal = registry_module.terminal(987_654_321, "OnDemand-Server")
    try:
        assert registry_module.terminal(987_654_321, "OnDemand-Server") is terminal
        assert terminal.initialize(login=987_654_321, password="whatever", server="OnDemand-Server")
        assert terminal.account_info().balance == 10_000.0
    finally:
        registry_module.default_registry().remove(987_654_321, "OnDemand-Server")


def test_calls_from_many_threads_are_serialised():
    terminal = SimulatedTerminal(login=1, clock=SimClock.fixed(START), balance=1_000_000)
    terminal.initialize()
    terminal.sim_set_price("EURUSD", 1.085, 1.0851)
    results = []

    def worker():
        for _ in range(20):
            results.append(buy(terminal, 0.01))
            terminal.account_info()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.retcode for r in results} == {10009}
    assert len({r.order for r in results}) == 160
    assert len({r.deal for r in results}) == 160
    assert terminal.positions_total() == 160
