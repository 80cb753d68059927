"""SimulatedTerminal: lifecycle, last_error semantics, argument rules, result structs, info, symbols and bars.

Pure tests (no database): `.venv/bin/pytest integrations/mt5/tests/test_simulated*.py -q`.
"""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.mt5 import structs
from integrations.mt5.simulated import SimClock, SimulatedTerminal

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SERVER_START = int((START + timedelta(hours=2)).timestamp())

NO_IPC = (-10004, "No IPC connection")
SUCCESS = (1, "Success")


def make_terminal(**options):
    options = {
        "login": 5001,
        "password": "pw",
        "server": "Sim-Demo",
        "clock": SimClock.fixed(START),
        "seed": 7,
        **options,
    }
    return SimulatedTerminal(**options)


@pytest.fixture
def mt5():
    terminal = make_terminal()
    assert terminal.initialize(login=5001, password="pw", server="Sim-Demo")
    return terminal


# --- lifecycle and last_error --------------------------------------------------------------------------------------


def test_every_call_before_initialize_fails_with_no_ipc_connection():
    terminal = make_terminal()
    assert terminal.last_error() == NO_IPC
    assert terminal.account_info() is None
    assert terminal.positions_get() is None
    assert terminal.version() is None
    assert terminal.symbol_select("EURUSD") is False
    assert terminal.last_error() == NO_IPC


def test_initialize_succeeds_and_sets_success():
    terminal = make_terminal()
    assert terminal.initialize(login=5001, password="pw", server="Sim-Demo") is True
    assert terminal.last_error() == SUCCESS
    assert terminal.account_info().login == 5001


def test_initialize_without_credentials_uses_the_saved_account():
    terminal = make_terminal()
    assert terminal.initialize() is True
    assert terminal.initialize("C:\\MT5\\terminal64.exe", timeout=5000, portable=True) is True


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"login": 5001, "password": "wrong"}, (-6, "Terminal: Authorization failed")),
        ({"login": 5002, "password": "pw"}, (-6, "Terminal: Authorization failed")),
        ({"login": 5001, "password": "pw", "server": "Other-Live"}, (-6, "Terminal: Authorization failed")),
        ({"login": "5001", "password": "pw"}, (-2, 'Invalid "login" argument')),
        ({"login": 5001, "password": 123}, (-2, 'Invalid "password" argument')),
        ({"login": 5001, "timeout": 1.5}, (-2, 'Invalid "timeout" argument')),
        ({"allow_trade": True}, (-2, "Invalid arguments")),
    ],
)
def test_initialize_failures_return_false_and_leave_no_link(kwargs, error):
    terminal = make_terminal()
    assert terminal.initialize(**kwargs) is False
    assert terminal.last_error() == error
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC


def test_login_requires_an_int_and_the_right_password(mt5):
    assert mt5.login("5001", password="pw") is False
    assert mt5.last_error() == (-2, 'Invalid "login" argument')
    assert mt5.login(5001, password="nope") is False
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.login(5001, password="pw", server="Sim-Demo", timeout=10_000) is True
    assert mt5.last_error() == SUCCESS


def test_investor_password_logs_in_read_only(mt5):
    terminal = make_terminal(investor_password="read-only")
    assert terminal.initialize(login=5001, password="read-only")
    assert terminal.account_info().trade_allowed is False
    tick = terminal.symbol_info_tick("EURUSD")
    result = terminal.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask, "deviation": 10}
    )
    assert result.retcode == terminal.TRADE_RETCODE_TRADE_DISABLED


def test_shutdown_drops_the_link_until_initialize_again(mt5):
    assert mt5.shutdown() is True
    assert mt5.account_info() is None
    assert mt5.last_error() == NO_IPC
    assert mt5.initialize() is True
    assert mt5.account_info().balance == 10_000.0


def test_version_is_a_tuple_of_int_int_str(mt5):
    major, build, date = mt5.version()
    assert major == 500
    assert isinstance(build, int)
    assert isinstance(date, str)
    assert mt5.version(1) is None
    assert mt5.last_error() == (-2, "Invalid arguments")


def test_constants_are_class_attributes_like_module_attributes(mt5):
    assert SimulatedTerminal.ORDER_TYPE_BUY == 0
    assert mt5.TRADE_ACTION_DEAL == 1
    assert mt5.TRADE_RETCODE_DONE == 10009
    assert mt5.RES_S_OK == 1
    assert mt5.RES_E_INTERNAL_FAIL_CONNECT == -10004
    assert mt5.TIMEFRAME_H1 == 16385
    assert not hasattr(mt5, "TRADE_RETCODE_HEDGE_PROHIBITED")  # missing from 5.0.6231 too


# --- result structs ------------------------------------------------------------------------------------------------

EXPECTED_SIZES = {
    "AccountInfo": 28,
    "TerminalInfo": 22,
    "TradePosition": 19,
    "TradeOrder": 24,
    "TradeDeal": 18,
    "SymbolInfo": 96,
    "Tick": 8,
    "TradeRequest": 17,
    "OrderCheckResult": 9,
    "OrderSendResult": 11,
    "BookInfo": 4,
}


@pytest.mark.parametrize(("name", "size"), EXPECTED_SIZES.items())
def test_struct_sizes_match_the_official_types(name, size):
    assert len(structs.field_names(structs.STRUCT_TYPES[name])) == size


def test_struct_field_orders_match_the_reference():
    assert structs.field_names(structs.AccountInfo)[:10] == (
        "login", "trade_mode", "leverage", "limit_orders", "margin_so_mode", "trade_allowed", "trade_expert",
        "margin_mode", "currency_digits", "fifo_close",
    )  # fmt: skip
    assert structs.field_names(structs.TradeDeal) == (
        "ticket", "order", "time", "time_msc", "type", "entry", "magic", "position_id", "reason", "volume",
        "price", "commission", "swap", "profit", "fee", "symbol", "comment", "external_id",
    )  # fmt: skip
    assert structs.field_names(structs.Tick) == (
        "time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real",
    )  # fmt: skip
    symbol = structs.field_names(structs.SymbolInfo)
    assert symbol[0] == "custom"
    assert symbol[31] == "bid"
    assert symbol[-1] == "path"
    assert symbol[-13] == "basis"


def test_structs_behave_like_struct_sequences(mt5):
    info = mt5.account_info()
    assert isinstance(info, tuple)
    assert info[0] == info.login == 5001
    assert list(info._asdict()) == list(structs.field_names(info))
    assert not hasattr(info, "_replace")
    assert not hasattr(info, "_fields")
    assert structs.AccountInfo.from_dict(info._asdict()) == info


def test_from_dict_rebuilds_nested_requests_and_coerces_numbers():
    request = dict.fromkeys(structs.field_names(structs.TradeRequest), 0)
    request.update(symbol="EURUSD", comment="x")
    result = {
        "retcode": 10009, "deal": 1, "order": 2, "volume": 1, "price": 1, "bid": 1, "ask": 1,
        "comment": "Request executed", "request_id": 3, "retcode_external": 0, "request": request, "extra": 1,
    }  # fmt: skip
    rebuilt = structs.OrderSendResult.from_dict(result)
    assert isinstance(rebuilt.request, structs.TradeRequest)
    assert rebuilt.volume == 1.0
    assert isinstance(rebuilt.volume, float)
    assert isinstance(rebuilt._asdict()["request"], structs.TradeRequest)  # shallow, like the real one
    with pytest.raises(ValueError, match="missing"):
        structs.Tick.from_dict({"time": 1})


# --- account, terminal, symbols --------------------------------------------------------------------------------------


def test_account_info_reports_the_new_account(mt5):
    info = mt5.account_info()
    assert (info.balance, info.equity, info.margin, info.margin_free, info.margin_level) == (
        10_000.0, 10_000.0, 0.0, 10_000.0, 0.0,
    )  # fmt: skip
    assert (info.currency, info.currency_digits, info.leverage, info.margin_mode) == ("USD", 2, 100, 2)
    assert (info.margin_so_mode, info.margin_so_call, info.margin_so_so) == (0, 50.0, 30.0)
    assert info.server == "Sim-Demo"
    assert info.trade_allowed
    assert info.trade_expert


def test_the_opening_balance_is_a_balance_deal(mt5):
    (deal,) = mt5.history_deals_get(0, 2**31)
    assert (deal.type, deal.entry, deal.profit, deal.symbol, deal.order, deal.position_id) == (
        mt5.DEAL_TYPE_BALANCE, mt5.DEAL_ENTRY_IN, 10_000.0, "", 0, 0,
    )  # fmt: skip


def test_terminal_info_reflects_the_switches(mt5):
    info = mt5.terminal_info()
    assert info.connected
    assert info.trade_allowed
    assert not info.tradeapi_disabled
    assert info.name == "MetaTrader 5"
    assert info.ping_last > 1000
    mt5.sim_set_connected(False)
    mt5.sim_set_trade_allowed(False)
    mt5.sim_set_tradeapi_disabled(True)
    info = mt5.terminal_info()
    assert (info.connected, info.trade_allowed, info.tradeapi_disabled) == (False, False, True)


def test_times_are_the_trade_servers_wall_clock(mt5):
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick.time == SERVER_START
    assert tick.time_msc == SERVER_START * 1000
    assert mt5.sim_server_time() == SERVER_START
    assert mt5.sim_now() == START


def test_symbol_info_and_tick(mt5):
    mt5.sim_set_price("EURUSD", 1.085, 1.0851)
    info = mt5.symbol_info("EURUSD")
    assert (info.name, info.digits, info.point, info.trade_contract_size) == ("EURUSD", 5, 1e-05, 100_000.0)
    assert (info.bid, info.ask, info.spread) == (1.085, 1.0851, 10)
    assert (info.volume_min, info.volume_step, info.currency_base, info.currency_profit) == (
        0.01,
        0.01,
        "EUR",
        "USD",
    )
    assert info.trade_tick_value == 1.0
    tick = mt5.symbol_info_tick("EURUSD")
    assert (tick.bid, tick.ask, tick.last, tick.flags) == (1.085, 1.0851, 0.0, 6)


def test_usdjpy_tick_value_is_converted_to_usd(mt5):
    mt5.sim_set_price("USDJPY", 150.0, 150.012)
    assert mt5.symbol_info("USDJPY").trade_tick_value == pytest.approx(100 / 150.0)


def test_unknown_symbol_and_bad_arguments(mt5):
    assert mt5.symbol_info("NOPE") is None
    assert mt5.last_error() == (-1, "Terminal: Call failed")
    assert mt5.symbol_info_tick("NOPE") is None
    assert mt5.symbol_info(123) is None
    assert mt5.last_error() == (-2, "Invalid 1st unnamed argument")
    assert mt5.symbol_info() is None
    assert mt5.last_error() == (-2, "Invalid number of arguments")


def test_symbols_get_and_group_masks(mt5):
    assert mt5.symbols_total() == 7
    names = {s.name for s in mt5.symbols_get()}
    assert {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "XAGUSD", "US500", "GER40"} == names
    assert {s.name for s in mt5.symbols_get(group="*USD*,!EUR*")} == {"GBPUSD", "USDJPY", "XAUUSD", "XAGUSD"}
    assert mt5.symbols_get(group="NOTHING*") == ()
    assert mt5.symbols_get("*USD*") is None
    assert mt5.last_error() == (-2, "Unnamed arguments not allowed")


def test_symbol_select_cannot_remove_a_symbol_in_use(mt5):
    assert mt5.symbol_select("GER40", True) is True
    assert mt5.symbol_info("GER40").select is True
    assert mt5.symbol_select("GER40", False) is True
    assert mt5.symbol_info("GER40").select is False
    mt5.sim_open_manual("EURUSD", "buy", 0.1)
    assert mt5.symbol_select("EURUSD", False) is False
    assert mt5.symbol_select("NOPE") is False


def test_empty_results_are_empty_tuples_with_success(mt5):
    assert mt5.positions_get() == ()
    assert mt5.last_error() == SUCCESS
    assert mt5.positions_get(symbol="GBPUSD") == ()
    assert mt5.positions_get(ticket=123) == ()
    assert mt5.orders_get() == ()
    assert mt5.positions_total() == 0
    assert mt5.history_deals_get(position=999) == ()
    assert mt5.last_error() == SUCCESS


def test_named_arguments_only_where_the_module_wants_them(mt5):
    assert mt5.positions_get("EURUSD") is None
    assert mt5.last_error() == (-2, "Unnamed arguments not allowed")
    assert mt5.positions_get(ticket="1") is None
    assert mt5.last_error() == (-2, 'Invalid "ticket" argument')
    assert mt5.history_orders_total("invalid", "arguments") is None
    assert mt5.last_error()[0] == -2
    assert mt5.history_deals_get() is None
    assert mt5.last_error() == (-2, "Invalid arguments")


# --- bars ------------------------------------------------------------------------------------------------------------


def test_copy_rates_from_pos_returns_records_oldest_first(mt5):
    mt5.sim_advance(180)
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 10)
    assert len(rates) == 10
    times = [r.time for r in rates]
    assert times == sorted(times)
    assert times[-1] == SERVER_START + 180
    last = rates[-1]
    assert last["close"] == last.close == last[4] == mt5.symbol_info_tick("EURUSD").bid
    assert all(r.low <= min(r.open, r.close) and r.high >= max(r.open, r.close) for r in rates)


def test_copy_rates_aggregates_higher_timeframes(mt5):
    m1 = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 600)
    h1 = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 1, 2)
    for bar in h1:
        inside = [r for r in m1 if bar.time <= r.time < bar.time + 3600]
        assert bar.open == inside[0].open
        assert bar.close == inside[-1].close
        assert bar.high == max(r.high for r in inside)
        assert bar.low == min(r.low for r in inside)
        assert bar.tick_volume == sum(r.tick_volume for r in inside)


def test_copy_rates_errors(mt5):
    assert mt5.copy_rates_from_pos("NOPE", 1, 0, 10) is None
    assert mt5.copy_rates_from_pos("EURUSD", 7, 0, 10) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.copy_rates_from_pos("EURUSD", 1, 10**7, 10) is None


def test_copy_rates_range_and_from(mt5):
    start = SERVER_START - 3600
    rates = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M5, start, SERVER_START)
    assert rates[0].time == start
    assert rates[-1].time == SERVER_START
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_M1, SERVER_START, 5)) == 5
