"""TerminalGateway on recorded payloads: Decimal quantization, server clock → UTC, sl/tp, error mapping."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from integrations.mt5 import structs
from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayError,
    GatewayInvalidRequest,
    GatewayTimeout,
    GatewayTradingDisabled,
    GatewayUnavailable,
    GatewayVersionMismatch,
)
from integrations.mt5.terminal import TerminalGateway
from integrations.mt5.tests import fakes
from integrations.mt5.types import MarginMode, Side, TradeRequest

NOW = float(fakes.UTC_EPOCH + 3)  # our clock: 3 s after the recorded tick


def gateway(api: fakes.ScriptedApi, **kwargs) -> TerminalGateway:
    kwargs.setdefault("server_utc_offset", fakes.SERVER_OFFSET)
    kwargs.setdefault("clock", lambda: NOW)
    return TerminalGateway(api, login=5001, password="s3cr3t-pw", server="Sim-Demo", **kwargs)


def connected(api: fakes.ScriptedApi | None = None, **kwargs) -> TerminalGateway:
    g = gateway(api or fakes.ScriptedApi(), **kwargs)
    g.connect()
    return g


# ---------------------------------------------------------------------- connect


def test_connect_initializes_with_path_portable_timeout_then_logs_in_and_verifies():
    api = fakes.ScriptedApi()
    g = gateway(api, path=r"C:\MT5_1\terminal64.exe", portable=True, timeout_ms=15000)
    g.connect()
    assert api.calls[0] == ("initialize", (r"C:\MT5_1\terminal64.exe",), {"timeout": 15000, "portable": True})
    assert api.calls[1] == (
        "login",
        (5001,),
        {"timeout": 15000, "password": "s3cr3t-pw", "server": "Sim-Demo"},
    )
    assert api.names()[2] == "account_info"
    assert g.is_connected


def test_connect_without_password_uses_the_terminals_saved_one():
    api = fakes.ScriptedApi()
    TerminalGateway(api, login=5001, password="", server="", server_utc_offset=0).connect()
    assert api.calls[0] == ("initialize", (), {"timeout": 60000, "portable": False})
    assert api.calls[1] == ("login", (5001,), {"timeout": 60000})


@pytest.mark.parametrize("info", [fakes.account_info(login=777), fakes.account_info(server="Other-Live")])
def test_connect_refuses_a_terminal_logged_into_another_account(info):
    api = fakes.ScriptedApi(account_info=info)
    g = gateway(api)
    with pytest.raises(GatewayAuthFailed, match="logged into another account"):
        g.connect()
    assert not g.is_connected
    assert api.names()[-1] == "shutdown"


def test_connect_maps_a_rejected_login_to_auth_failed_and_shuts_down():
    api = fakes.ScriptedApi()
    api.fail("login", -6, "Terminal: Authorization failed")
    with pytest.raises(GatewayAuthFailed) as caught:
        gateway(api).connect()
    assert caught.value.code == -6
    assert "s3cr3t-pw" not in str(caught.value)
    assert api.names() == ["initialize", "login", "shutdown"]


def test_repr_never_shows_the_password():
    g = gateway(fakes.ScriptedApi())
    assert "s3cr3t-pw" not in repr(g)
    assert "s3cr3t-pw" not in str(vars(g).keys())


# ---------------------------------------------------------------------- account, Decimal


def test_account_money_is_quantized_to_currency_digits():
    state = connected().account()
    assert state.balance == Decimal("10000.00")
    assert str(state.balance) == "10000.00"
    assert str(state.profit) == "-12.34"  # half-even on the Decimal of str(float)
    assert str(state.equity) == "9987.66"
    assert str(state.margin_level) == "4602.13"
    assert state.margin_mode is MarginMode.HEDGING
    assert state.login == 5001
    assert state.currency == "USD"


def test_account_of_a_zero_digit_currency_has_no_decimals():
    api = fakes.ScriptedApi(
        account_info=fakes.account_info(currency="JPY", currency_digits=0, balance=1234567.89)
    )
    assert str(connected(api).account().balance) == "1234568"


def test_account_time_is_aware_utc_and_server_time_in_the_broker_zone():
    state = connected().account()
    assert state.time == datetime.fromtimestamp(NOW, tz=UTC)
    assert state.server_time == state.time
    assert state.server_time.utcoffset() == timedelta(hours=2)


# ---------------------------------------------------------------------- positions


def test_positions_map_prices_to_symbol_digits_volume_to_step_and_times_to_utc():
    api = fakes.ScriptedApi(positions_get=(fakes.position(),))
    (p,) = connected(api).positions()
    assert p.ticket == 1001
    assert p.identifier == 1001
    assert p.side is Side.BUY
    assert str(p.volume) == "0.30"
    assert str(p.price_open) == "1.08510"
    assert str(p.price_current) == "1.08498"
    assert str(p.swap) == "-0.12"
    assert str(p.profit) == "-3.60"
    assert p.time == datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
    assert p.server_time == datetime(2026, 3, 2, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
    assert p.server_time == p.time  # the same instant
    assert p.time_epoch == fakes.SERVER_EPOCH
    assert p.magic == 990001
    assert p.comment == "bt-1"
    assert p.reason == 3


def test_position_sl_tp_zero_is_none():
    api = fakes.ScriptedApi(
        positions_get=(fakes.position(sl=0.0, tp=1.0951), fakes.position(ticket=2, type=1, sl=1.2, tp=0.0))
    )
    first, second = connected(api).positions()
    assert first.sl is None
    assert first.tp == Decimal("1.09510")
    assert second.side is Side.SELL
    assert second.sl == Decimal("1.20000")
    assert second.tp is None


def test_positions_filters_are_passed_as_keywords():
    api = fakes.ScriptedApi()
    g = connected(api)
    g.positions(symbol="EURUSD")
    g.positions(ticket=42)
    g.positions()
    calls = [c for c in api.calls if c[0] == "positions_get"]
    assert calls == [
        ("positions_get", (), {"symbol": "EURUSD"}),
        ("positions_get", (), {"ticket": 42}),
        ("positions_get", (), {}),
    ]


@pytest.mark.parametrize("code", [1, -4])
def test_get_functions_returning_none_with_success_or_not_found_are_empty(code):
    api = fakes.ScriptedApi()
    g = connected(api)
    api.fail("positions_get", code, "Terminal: Not found")
    assert g.positions() == ()
    api.fail("history_deals_get", code, "")
    assert g.deals_for_position(position_id=1) == ()


def test_empty_tuple_is_empty():
    assert connected(fakes.ScriptedApi(positions_get=())).positions() == ()


def test_jpy_symbol_uses_three_digits():
    api = fakes.ScriptedApi(
        symbol_info=lambda name: fakes.symbol_info(name, digits=3, point=0.001),
        positions_get=(fakes.position(symbol="USDJPY", price_open=151.2345678, price_current=151.1),),
    )
    (p,) = connected(api).positions()
    assert str(p.price_open) == "151.235"
    assert str(p.price_current) == "151.100"


def test_delisted_symbol_in_history_keeps_raw_precision():
    api = fakes.ScriptedApi(history_deals_get=(fakes.deal(symbol="OLDSYM", price=12.3456789),))
    (d,) = connected(api).deals_for_position(position_id=1001)
    assert d.price == Decimal("12.3456789")


# ---------------------------------------------------------------------- deals


def test_deals_are_sorted_by_time_msc_and_mapped():
    later = fakes.deal(ticket=2002, entry=1, time_msc=fakes.SERVER_EPOCH * 1000 + 900, profit=12.5, reason=4)
    api = fakes.ScriptedApi(history_deals_get=(later, fakes.deal()))
    deals = connected(api).deals_for_position(position_id=1001)
    assert [d.ticket for d in deals] == [2001, 2002]
    assert ("history_deals_get", (), {"position": 1001}) in api.calls
    assert str(deals[0].price) == "1.08510"
    assert str(deals[0].commission) == "-2.10"
    assert deals[1].profit == Decimal("12.50")
    assert deals[1].reason == 4
    assert deals[1].entry == 1
    assert deals[0].time == datetime(2026, 3, 2, 10, 0, 0, 500000, tzinfo=UTC)
    assert deals[0].time_msc == fakes.SERVER_EPOCH * 1000 + 500


def test_deals_range_is_converted_to_the_server_clock():
    api = fakes.ScriptedApi()
    since = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    connected(api).deals(since=since, until=since + timedelta(days=1))
    assert api.calls[-1] == (
        "history_deals_get",
        (int(since.timestamp()) + 7200, int(since.timestamp()) + 86400 + 7200),
        {},
    )


def test_deals_refuse_naive_datetimes():
    with pytest.raises(GatewayInvalidRequest, match="naive"):
        connected().deals(since=datetime(2026, 3, 2), until=datetime(2026, 3, 3))


def test_balance_deal_without_symbol_maps():
    api = fakes.ScriptedApi(
        history_deals_get=(fakes.deal(symbol="", type=2, price=0.0, profit=10000.0, volume=0.0),)
    )
    (d,) = connected(api).deals_for_position(position_id=0)
    assert d.profit == Decimal("10000.00")
    assert d.symbol == ""


# ---------------------------------------------------------------------- server clock


def test_offset_is_estimated_from_a_tick_seen_arriving_when_not_configured():
    clock = {"now": NOW}
    api = fakes.ScriptedApi()
    g = connected(api, server_utc_offset=None, clock=lambda: clock["now"])
    g.tick("EURUSD")
    assert g.server_utc_offset is None  # one reading says nothing about the tick's age
    assert g.server_utc_offset_source == "unknown"
    clock["now"] = NOW + 5
    api.answers["symbol_info_tick"] = lambda name: fakes.tick(time=fakes.SERVER_EPOCH + 5)
    g.tick("EURUSD")
    assert g.server_utc_offset == 7200
    assert g.server_utc_offset_source == "estimated"


def test_a_tick_that_never_changes_leaves_the_offset_unknown():
    clock = {"now": NOW}
    g = connected(fakes.ScriptedApi(), server_utc_offset=None, clock=lambda: clock["now"])
    for step in range(3):
        clock["now"] = NOW + 10 * step
        g.tick("EURUSD")
    assert g.server_utc_offset is None
    assert g.account().server_utc_offset_known is False


def test_configured_offset_is_never_re_estimated():
    g = connected(fakes.ScriptedApi(), server_utc_offset=timedelta(hours=3))
    g.tick("EURUSD")
    assert g.server_utc_offset == 10800
    assert g.server_utc_offset_source == "configured"
    assert g.tick("EURUSD").server_time.utcoffset() == timedelta(hours=3)


# ---------------------------------------------------------------------- symbols and ticks


def test_symbol_spec_maps_to_decimals():
    spec = connected().symbol("EURUSD")
    assert spec.digits == 5
    assert spec.point == Decimal("0.00001")
    assert spec.volume_step == Decimal("0.01")
    assert spec.trade_contract_size == Decimal("100000.0")
    assert spec.currency_profit == "USD"


def test_unknown_symbol_is_an_invalid_request():
    g = connected()
    with pytest.raises(GatewayInvalidRequest, match="unknown symbol"):
        g.symbol("NOPE")
    with pytest.raises(GatewayInvalidRequest):
        g.tick("NOPE")


def test_tick_selects_a_symbol_missing_from_market_watch_once():
    state = {"selected": False}
    api = fakes.ScriptedApi(
        symbol_info_tick=lambda name: fakes.tick() if state["selected"] else None,
        symbol_select=lambda name, enable: state.update(selected=True) or True,
    )
    t = connected(api).tick("EURUSD")
    assert t.bid == Decimal("1.08500")
    assert t.ask == Decimal("1.08510")
    assert t.spread == Decimal("0.00010")
    assert ("symbol_select", ("EURUSD", True), {}) in api.calls


def test_bars_from_rate_records():
    rate = structs.Rate(fakes.SERVER_EPOCH, 1.08501, 1.086, 1.084999999, 1.0855, 120, 10, 0)
    api = fakes.ScriptedApi(copy_rates_from_pos=(rate,))
    (bar,) = connected(api).bars(symbol="EURUSD", timeframe=16385, count=1)
    assert bar.time == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert str(bar.low) == "1.08500"
    assert bar.tick_volume == 120
    assert ("copy_rates_from_pos", ("EURUSD", 16385, 0, 1), {}) in api.calls


def test_margin_and_profit_calls_pass_plain_floats_and_return_money():
    api = fakes.ScriptedApi(order_calc_margin=217.0212, order_calc_profit=-30.004)
    g = connected(api)
    assert g.margin_for(
        side=Side.BUY, symbol="EURUSD", volume=Decimal("0.2"), price=Decimal("1.08510")
    ) == Decimal("217.02")
    assert api.calls[-1] == ("order_calc_margin", (0, "EURUSD", 0.2, 1.0851), {})
    assert g.profit_for(
        side=Side.SELL,
        symbol="EURUSD",
        volume=Decimal("1"),
        price_open=Decimal("1.1"),
        price_close=Decimal("1.1003"),
    ) == Decimal("-30.00")
    name, args, _ = api.calls[-1]
    assert name == "order_calc_profit"
    assert args[0] == 1
    assert all(type(a) is float for a in args[2:])


# ---------------------------------------------------------------------- orders


def close_request(**overrides) -> TradeRequest:
    values: dict[str, Any] = {
        "action": 1,
        "symbol": "EURUSD",
        "volume": Decimal("0.30"),
        "type": 1,
        "price": Decimal("1.08498"),
        "deviation": 20,
        "magic": 990001,
        "comment": "close",
        "type_filling": 0,
        "position": 1001,
    }
    values.update(overrides)
    return TradeRequest(**values)


def test_order_send_builds_a_plain_request_with_position_and_magic():
    api = fakes.ScriptedApi()
    result = connected(api).order_send(close_request())
    name, (payload,), _ = api.calls[-1]
    assert name == "order_send"
    assert payload == {
        "action": 1,
        "symbol": "EURUSD",
        "volume": 0.3,
        "type": 1,
        "price": 1.08498,
        "deviation": 20,
        "comment": "close",
        "type_filling": 0,
        "type_time": 0,
        "magic": 990001,
        "position": 1001,
    }
    assert all(type(v) in (int, float, str) for v in payload.values())
    assert result.retcode == 10009
    assert result.deal == 2002
    assert result.order == 1002
    assert str(result.price) == "1.08498"
    assert str(result.volume) == "0.30"


def test_request_without_position_or_magic_leaves_them_out_and_sends_stops_when_set():
    payload = TerminalGateway.request_dict(close_request(position=0, magic=0, sl=Decimal("1.07"), tp=None))
    assert "position" not in payload
    assert "magic" not in payload
    assert payload["sl"] == 1.07
    assert "tp" not in payload


def test_sltp_request_always_sends_both_levels():
    payload = TerminalGateway.request_dict(close_request(action=6, sl=Decimal("1.07"), tp=None))
    assert payload["sl"] == 1.07
    assert payload["tp"] == 0.0


@pytest.mark.parametrize("retcode", [10009, 10004, 10016, 10030, 10036])
def test_order_send_returns_any_retcode(retcode):
    api = fakes.ScriptedApi(order_send=fakes.send_result(retcode, deal=0, order=0, comment="x"))
    assert connected(api).order_send(close_request()).retcode == retcode


@pytest.mark.parametrize(
    ("code", "error"),
    [(-10005, GatewayTimeout), (-10004, GatewayUnavailable), (-10001, GatewayUnavailable)],
)
def test_order_send_none_with_an_ipc_error_is_an_unknown_outcome(code, error):
    api = fakes.ScriptedApi()
    g = connected(api)
    api.fail("order_send", code, "IPC")
    with pytest.raises(error) as caught:
        g.order_send(close_request())
    assert caught.value.code == code
    assert caught.value.call == "order_send"
    assert caught.value.retryable


def test_order_check_maps_money():
    check = structs.OrderCheckResult(
        0, 10000.0, 9990.004, -10.0, 217.02, 9772.98, 4603.2, "Done", fakes.trade_request()
    )
    result = connected(fakes.ScriptedApi(order_check=check)).order_check(close_request())
    assert result.retcode == 0
    assert result.equity == Decimal("9990.00")
    assert result.comment == "Done"


# ---------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (-10000, GatewayUnavailable),
        (-10001, GatewayUnavailable),
        (-10002, GatewayUnavailable),
        (-10003, GatewayUnavailable),
        (-10004, GatewayUnavailable),
        (-10005, GatewayTimeout),
        (-3, GatewayUnavailable),
        (-6, GatewayAuthFailed),
        (-1, GatewayInvalidRequest),
        (-2, GatewayInvalidRequest),
        (-4, GatewayInvalidRequest),
        (-7, GatewayInvalidRequest),
        (-8, GatewayTradingDisabled),
        (-5, GatewayVersionMismatch),
        (1, GatewayError),
        (12345, GatewayError),
    ],
)
def test_every_last_error_class_maps_to_its_error(code, error):
    api = fakes.ScriptedApi()
    g = connected(api)
    api.fail("account_info", code, "described")
    with pytest.raises(error) as caught:
        g.account()
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.description == "described"
    assert caught.value.call == "account_info"


def test_a_false_from_a_bool_function_is_mapped_too():
    api = fakes.ScriptedApi()
    api.fail("initialize", -10003, "IPC initialize failed, MetaTrader 5 x64 not found")
    with pytest.raises(GatewayUnavailable, match="x64 not found"):
        gateway(api).connect()


def test_system_error_from_the_extension_is_mapped_by_last_error():
    api = fakes.ScriptedApi()
    g = connected(api)
    api.explode("positions_get", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable) as caught:
        g.positions()
    assert isinstance(caught.value.__cause__, SystemError)


def test_system_error_without_a_last_error_is_a_plain_gateway_error():
    api = fakes.ScriptedApi()
    g = connected(api)
    api.explode("history_deals_get")
    with pytest.raises(GatewayError, match="SystemError") as caught:
        g.deals_for_position(position_id=1)
    assert type(caught.value) is GatewayError


def test_last_error_that_itself_fails_reads_as_no_ipc():
    class Broken(fakes.ScriptedApi):
        def last_error(self):
            raise OSError("pipe gone")

    api = Broken()
    g = connected(api)
    api.fail("account_info", -1)
    with pytest.raises(GatewayUnavailable):
        g.account()


# ---------------------------------------------------------------------- health


def test_health_reports_terminal_flags_ping_in_ms_and_tick_age():
    g = connected(fakes.ScriptedApi())
    health = g.health(symbols=["EURUSD"])
    assert health.connected
    assert health.trade_allowed
    assert not health.tradeapi_disabled
    assert health.ping_ms == Decimal("77.881")
    assert health.newest_tick_age_seconds == Decimal("2.750")  # tick at +0.250 s, clock at +3 s
    assert health.probe_latency_ms >= 0
    assert health.error == ""
    assert health.checked_at == datetime.fromtimestamp(NOW, tz=UTC)


def test_health_trade_allowed_needs_terminal_and_account_permission():
    api = fakes.ScriptedApi(account_info=fakes.account_info(trade_expert=False))
    assert connected(api).health().trade_allowed is False
    api = fakes.ScriptedApi(terminal_info=fakes.terminal_info(trade_allowed=False, tradeapi_disabled=True))
    health = connected(api).health()
    assert health.trade_allowed is False
    assert health.tradeapi_disabled is True


def test_health_uses_recently_read_symbols_when_none_are_given():
    api = fakes.ScriptedApi(positions_get=(fakes.position(),))
    g = connected(api)
    g.positions()
    assert g.health().newest_tick_age_seconds is not None


def test_health_never_raises():
    api = fakes.ScriptedApi()
    g = connected(api)
    api.fail("terminal_info", -10004, "No IPC connection")
    health = g.health()
    assert not health.connected
    assert "No IPC connection" in health.error
    assert health.ping_ms is None


def test_terminal_state():
    state = connected().terminal()
    assert state.connected
    assert state.build == 4755
    assert state.ping_ms == Decimal("77.881")
