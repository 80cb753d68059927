"""SimulatedTerminal trading: order_send/order_check results, rejections, netting vs hedging, history, pending."""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.mt5 import structs
from integrations.mt5.simulated import SimClock, SimulatedTerminal, SimulatorError

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def make_terminal(margin_mode="hedging", **options):
    terminal = SimulatedTerminal(
        login=5001,
        password="pw",
        clock=SimClock.fixed(START),
        seed=3,
        margin_mode=margin_mode,
        **options,
    )
    assert terminal.initialize(login=5001, password="pw")
    terminal.sim_set_price("EURUSD", 1.08500, 1.08510)
    terminal.sim_set_price("USDJPY", 150.000, 150.012)
    terminal.sim_set_price("XAUUSD", 2900.00, 2900.25)
    return terminal


@pytest.fixture
def mt5():
    return make_terminal()


@pytest.fixture
def netting():
    return make_terminal("netting")


def market(mt5, side, volume, symbol="EURUSD", **extra):
    tick = mt5.symbol_info_tick(symbol)
    buy = side == "buy"
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
        "price": tick.ask if buy else tick.bid,
        "deviation": 20,
        "magic": 42,
        "comment": "test",
        "type_time": mt5.ORDER_TIME_GTC,
        "type_filling": mt5.ORDER_FILLING_FOK,
        **extra,
    }
    return mt5.order_send(request)


def close(mt5, position, volume=None, **extra):
    side = "sell" if position.type == mt5.POSITION_TYPE_BUY else "buy"
    return market(mt5, side, volume or position.volume, position.symbol, position=position.ticket, **extra)


def assert_rejected(result, retcode):
    assert result.retcode == retcode
    assert (result.deal, result.order, result.volume, result.price, result.request_id) == (0, 0, 0.0, 0.0, 0)
    assert isinstance(result.request, structs.TradeRequest)


# --- market orders ---------------------------------------------------------------------------------------------------


def test_market_buy_fills_at_ask_with_the_official_result_shape(mt5):
    result = market(mt5, "buy", 1.0)
    assert isinstance(result, structs.OrderSendResult)
    assert (result.retcode, result.comment, result.retcode_external) == (10009, "Request executed", 0)
    assert (result.volume, result.price, result.bid, result.ask) == (1.0, 1.0851, 1.085, 1.0851)
    assert result.request_id > 0
    assert result.deal > 0
    assert result.order > 0
    assert result.request.symbol == "EURUSD"
    assert result.request.volume == 1.0
    assert result.request.comment == "test"
    assert mt5.last_error() == (1, "Success")


def test_position_ticket_is_the_order_ticket_and_the_identifier(mt5):
    result = market(mt5, "buy", 0.5)
    (position,) = mt5.positions_get()
    assert position.ticket == result.order == position.identifier
    assert (position.type, position.volume, position.price_open, position.price_current) == (
        0,
        0.5,
        1.0851,
        1.085,
    )
    assert (position.magic, position.reason, position.comment) == (42, mt5.POSITION_REASON_EXPERT, "test")
    assert position.profit == -5.0  # the spread, 10 points on 0.5 lot
    (order,) = mt5.history_orders_get(ticket=result.order)
    assert (order.state, order.reason, order.position_id, order.volume_current) == (
        mt5.ORDER_STATE_FILLED,
        mt5.ORDER_REASON_EXPERT,
        position.ticket,
        0.0,
    )
    (deal,) = mt5.history_deals_get(ticket=result.order)  # ticket= means the ORDER ticket
    assert deal.ticket == result.deal
    assert deal.ticket != result.order  # separate counters
    assert (deal.entry, deal.reason, deal.type, deal.position_id, deal.profit) == (
        mt5.DEAL_ENTRY_IN,
        mt5.DEAL_REASON_EXPERT,
        mt5.DEAL_TYPE_BUY,
        position.ticket,
        0.0,
    )
    assert mt5.history_deals_get(ticket=result.deal) == ()  # the gotcha: a deal ticket finds nothing


def test_close_realises_profit_and_writes_an_out_deal(mt5):
    opened = market(mt5, "buy", 1.0)
    mt5.sim_set_price("EURUSD", 1.08800, 1.08810)
    (position,) = mt5.positions_get()
    assert position.profit == 290.0
    closed = close(mt5, position)
    assert (closed.retcode, closed.price) == (10009, 1.088)
    assert mt5.positions_get() == ()
    deals = mt5.history_deals_get(position=opened.order)
    assert [(d.entry, d.profit) for d in deals] == [(mt5.DEAL_ENTRY_IN, 0.0), (mt5.DEAL_ENTRY_OUT, 290.0)]
    info = mt5.account_info()
    assert (info.balance, info.equity, info.margin) == (10_290.0, 10_290.0, 0.0)


def test_partial_close_keeps_the_ticket(mt5):
    market(mt5, "buy", 1.0)
    (position,) = mt5.positions_get()
    result = close(mt5, position, volume=0.3)
    assert result.retcode == 10009
    (after,) = mt5.positions_get()
    assert (after.ticket, after.volume) == (position.ticket, 0.7)
    out = mt5.history_deals_get(position=position.ticket)[-1]
    assert (out.entry, out.volume) == (mt5.DEAL_ENTRY_OUT, 0.3)


def test_hedging_close_without_position_opens_an_opposite_position(mt5):
    market(mt5, "buy", 1.0)
    market(mt5, "sell", 1.0)  # no "position": a new hedge, as the real server does
    positions = mt5.positions_get()
    assert [p.type for p in positions] == [mt5.POSITION_TYPE_BUY, mt5.POSITION_TYPE_SELL]
    assert mt5.account_info().margin == pytest.approx(
        1085.1
    )  # hedged legs: larger leg only (margin_hedged 0)


def test_netting_nets_partial_close_and_reversal(netting):
    mt5 = netting
    first = market(mt5, "buy", 1.0)
    market(mt5, "buy", 1.0)
    (position,) = mt5.positions_get()
    assert (position.ticket, position.volume) == (first.order, 2.0)
    market(mt5, "sell", 0.5)
    (position,) = mt5.positions_get()
    assert (position.volume, position.type) == (1.5, mt5.POSITION_TYPE_BUY)
    reversal = market(mt5, "sell", 2.0)
    (position,) = mt5.positions_get()
    assert (position.ticket, position.identifier) == (first.order, first.order)
    assert (position.type, position.volume, position.price_open) == (mt5.POSITION_TYPE_SELL, 0.5, 1.085)
    (deal,) = mt5.history_deals_get(ticket=reversal.order)
    assert (deal.entry, deal.volume) == (mt5.DEAL_ENTRY_INOUT, 2.0)
    market(mt5, "buy", 0.5)
    assert mt5.positions_get() == ()
    entries = [d.entry for d in mt5.history_deals_get(position=first.order)]
    assert entries == [0, 0, 1, 2, 1]


def test_netting_average_price_on_increase(netting):
    market(netting, "buy", 1.0)
    netting.sim_set_price("EURUSD", 1.08600, 1.08610)
    market(netting, "buy", 1.0)
    (position,) = netting.positions_get()
    assert position.price_open == pytest.approx(1.0856)


def test_netting_close_with_position_cannot_reverse(netting):
    market(netting, "buy", 1.0)
    (position,) = netting.positions_get()
    assert close(netting, position, volume=2.0).retcode == netting.TRADE_RETCODE_INVALID_CLOSE_VOLUME


# --- rejections ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("volume", [0.015, 0.001, 1000.0, 0.0, -1.0])
def test_invalid_volume(mt5, volume):
    assert_rejected(market(mt5, "buy", volume), mt5.TRADE_RETCODE_INVALID_VOLUME)
    assert market(mt5, "buy", volume).comment == "Invalid volume"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("volume", 1, 'Invalid "volume" argument'),
        ("symbol", 5, 'Invalid "symbol" argument'),
        ("type", "buy", 'Invalid "type" argument'),
        ("comment", None, 'Invalid "comment" argument'),
        ("sl", "1.0", 'Invalid "sl" argument'),
    ],
)
def test_wrong_argument_types_are_local_errors(mt5, field, value, error):
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": 1.0851, "deviation": 10}
    assert mt5.order_send({**request, field: value}) is None
    assert mt5.last_error() == (-2, error)


def test_order_send_needs_a_dict(mt5):
    assert mt5.order_send([1, 2]) is None
    assert mt5.last_error() == (-2, "Invalid arguments")
    assert mt5.order_send() is None


def test_invalid_stops(mt5):
    assert_rejected(market(mt5, "buy", 0.1, sl=1.0851), mt5.TRADE_RETCODE_INVALID_STOPS)  # SL above bid
    assert_rejected(market(mt5, "sell", 0.1, sl=1.0800), mt5.TRADE_RETCODE_INVALID_STOPS)  # SL under ask
    assert_rejected(market(mt5, "buy", 0.1, tp=1.0800), mt5.TRADE_RETCODE_INVALID_STOPS)  # TP under bid
    assert market(mt5, "buy", 0.1, sl=1.0800, tp=1.0900).retcode == 10009
    # XAUUSD stops level 20 points = 0.20
    assert_rejected(market(mt5, "buy", 0.1, "XAUUSD", sl=2899.90), mt5.TRADE_RETCODE_INVALID_STOPS)
    assert market(mt5, "buy", 0.1, "XAUUSD", sl=2899.80).retcode == 10009


def test_market_closed(mt5):
    mt5.sim_set_market_open("EURUSD", False)
    assert_rejected(market(mt5, "buy", 0.1), mt5.TRADE_RETCODE_MARKET_CLOSED)
    mt5.sim_set_market_open("EURUSD", None)
    assert market(mt5, "buy", 0.1).retcode == 10009


def test_no_money(mt5):
    result = market(mt5, "buy", 10.0)  # 10 lots need 10 851 USD margin at 1:100
    assert_rejected(result, mt5.TRADE_RETCODE_NO_MONEY)
    assert result.comment == "No money"
    assert market(mt5, "buy", 9.0).retcode == 10009


def test_terminal_switches(mt5):
    mt5.sim_set_trade_allowed(False)
    assert_rejected(market(mt5, "buy", 0.1), mt5.TRADE_RETCODE_CLIENT_DISABLES_AT)
    mt5.sim_set_trade_allowed(True)
    mt5.sim_set_connected(False)
    assert_rejected(market(mt5, "buy", 0.1), mt5.TRADE_RETCODE_CONNECTION)
    mt5.sim_set_connected(True)
    mt5.sim_set_tradeapi_disabled(True)
    assert market(mt5, "buy", 0.1) is None
    assert mt5.last_error() == (-8, "Auto-Trading using Python API disabled in Terminal")
    mt5.sim_set_tradeapi_disabled(False)
    assert market(mt5, "buy", 0.1).retcode == 10009


def test_filling_modes_follow_the_symbol_flags(mt5):
    # EURUSD: instant execution -> filled FOK whatever is sent
    assert market(mt5, "buy", 0.1, type_filling=mt5.ORDER_FILLING_RETURN).retcode == 10009
    # XAGUSD: market execution, IOC only
    mt5.sim_set_price("XAGUSD", 32.5, 32.53)
    assert_rejected(market(mt5, "buy", 0.1, "XAGUSD"), mt5.TRADE_RETCODE_INVALID_FILL)
    assert_rejected(
        market(mt5, "buy", 0.1, "XAGUSD", type_filling=mt5.ORDER_FILLING_RETURN),
        mt5.TRADE_RETCODE_INVALID_FILL,
    )
    assert market(mt5, "buy", 0.1, "XAGUSD", type_filling=mt5.ORDER_FILLING_IOC).retcode == 10009
    # XAUUSD: market execution, FOK|IOC
    assert market(mt5, "buy", 0.1, "XAUUSD", type_filling=mt5.ORDER_FILLING_IOC).retcode == 10009


def test_position_already_closed_and_close_volume(mt5):
    market(mt5, "buy", 1.0)
    (position,) = mt5.positions_get()
    assert_rejected(close(mt5, position, volume=1.5), mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
    assert close(mt5, position).retcode == 10009
    assert_rejected(close(mt5, position), mt5.TRADE_RETCODE_POSITION_CLOSED)


def test_malformed_requests(mt5):
    assert_rejected(market(mt5, "buy", 0.1, action=99), mt5.TRADE_RETCODE_INVALID)
    request = {"action": 1, "symbol": "NOPE", "volume": 0.1, "type": 0, "price": 1.0851, "deviation": 10}
    assert_rejected(mt5.order_send(request), mt5.TRADE_RETCODE_INVALID)
    assert_rejected(market(mt5, "buy", 0.1, type=mt5.ORDER_TYPE_BUY_LIMIT), mt5.TRADE_RETCODE_INVALID_ORDER)


def test_requote_when_the_price_moved_beyond_deviation(mt5):
    result = market(mt5, "buy", 0.1, price=1.0840, deviation=10)  # instant execution
    assert result.retcode == mt5.TRADE_RETCODE_REQUOTE
    assert (result.bid, result.ask, result.deal, result.order) == (1.085, 1.0851, 0, 0)
    assert market(mt5, "buy", 0.1, price=1.0850, deviation=10).retcode == 10009  # within 10 points
    assert_rejected(market(mt5, "buy", 0.1, price=0.0), mt5.TRADE_RETCODE_INVALID_PRICE)
    mt5.sim_set_symbol("EURUSD", exemode=mt5.SYMBOL_TRADE_EXECUTION_REQUEST)
    assert market(mt5, "buy", 0.1, price=1.0840, deviation=10).retcode == mt5.TRADE_RETCODE_PRICE_CHANGED
    # Market execution ignores the request price
    assert market(mt5, "buy", 0.1, "XAUUSD", price=1.0, type_filling=mt5.ORDER_FILLING_IOC).retcode == 10009


def test_symbol_trade_modes(mt5):
    market(mt5, "buy", 0.1)
    mt5.sim_set_symbol("EURUSD", trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY)
    assert market(mt5, "buy", 0.1).retcode == mt5.TRADE_RETCODE_CLOSE_ONLY
    (position,) = mt5.positions_get()
    assert close(mt5, position).retcode == 10009
    mt5.sim_set_symbol("EURUSD", trade_mode=mt5.SYMBOL_TRADE_MODE_LONGONLY)
    assert market(mt5, "sell", 0.1).retcode == mt5.TRADE_RETCODE_LONG_ONLY
    mt5.sim_set_symbol("EURUSD", trade_mode=mt5.SYMBOL_TRADE_MODE_DISABLED)
    assert market(mt5, "buy", 0.1).retcode == mt5.TRADE_RETCODE_TRADE_DISABLED


# --- SL/TP modification ----------------------------------------------------------------------------------------------


def sltp(mt5, position, sl, tp):
    request = {"action": mt5.TRADE_ACTION_SLTP, "symbol": position.symbol, "position": position.ticket}
    return mt5.order_send({**request, "sl": sl, "tp": tp})


def test_sltp_modifies_both_levels(mt5):
    market(mt5, "buy", 0.1)
    (position,) = mt5.positions_get()
    assert sltp(mt5, position, 1.08, 1.09).retcode == 10009
    (position,) = mt5.positions_get()
    assert (position.sl, position.tp) == (1.08, 1.09)
    assert sltp(mt5, position, 1.08, 1.09).retcode == mt5.TRADE_RETCODE_NO_CHANGES
    assert sltp(mt5, position, 1.0851, 1.09).retcode == mt5.TRADE_RETCODE_INVALID_STOPS
    assert (
        mt5.order_send({"action": 6, "symbol": "EURUSD", "position": position.ticket, "sl": 1.07}).retcode
        == 10009
    )
    (position,) = mt5.positions_get()
    assert (position.sl, position.tp) == (1.07, 0.0)  # an omitted key is 0.0: TP removed


def test_sltp_unknown_position(mt5):
    result = mt5.order_send({"action": 6, "symbol": "EURUSD", "position": 777, "sl": 1.07, "tp": 0.0})
    assert result.retcode == mt5.TRADE_RETCODE_POSITION_CLOSED


# --- order_check -----------------------------------------------------------------------------------------------------


def test_order_check_reports_the_account_after_the_trade(mt5):
    tick = mt5.symbol_info_tick("EURUSD")
    request = {"action": 1, "symbol": "EURUSD", "volume": 1.0, "type": 0, "price": tick.ask, "deviation": 5}
    check = mt5.order_check(request)
    assert isinstance(check, structs.OrderCheckResult)
    assert (check.retcode, check.comment) == (0, "Done")
    assert check.margin == mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, tick.ask) == 1085.1
    assert (check.balance, check.equity, check.profit) == (10_000.0, 9_990.0, -10.0)
    assert check.margin_free == pytest.approx(9_990.0 - 1085.1)
    assert check.margin_level == pytest.approx(920.65, abs=0.01)
    assert mt5.positions_get() == ()  # nothing happened
    too_big = mt5.order_check({**request, "volume": 50.0})
    assert (too_big.retcode, too_big.comment) == (mt5.TRADE_RETCODE_NO_MONEY, "No money")
    assert mt5.order_check({**request, "volume": 0.001}).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME


# --- history ---------------------------------------------------------------------------------------------------------


def test_history_by_dates_uses_server_epochs(mt5):
    market(mt5, "buy", 0.1)
    mt5.sim_advance(3600)
    market(mt5, "buy", 0.2)
    now = mt5.sim_server_time()
    recent = mt5.history_deals_get(now - 60, now)
    assert [d.volume for d in recent] == [0.2]
    assert mt5.history_deals_total(now - 7200, now) == 3  # incl. the opening balance deal
    assert mt5.history_orders_total(now - 7200, now) == 2
    naive_utc_as_server = datetime.fromtimestamp(now - 60, tz=UTC).replace(tzinfo=None)
    assert len(mt5.history_deals_get(naive_utc_as_server, datetime.fromtimestamp(now, tz=UTC))) == 1
    assert [d.volume for d in mt5.history_deals_get(0, now, group="EUR*")] == [0.1, 0.2]
    assert mt5.history_deals_get(0, now, group="GBP*") == ()


def test_history_deals_datetime_aware_is_its_instant(mt5):
    market(mt5, "buy", 0.1)
    now_utc = mt5.sim_now()
    # an aware datetime is compared by its instant against server-clock epochs: the 2 h gotcha is preserved
    assert mt5.history_deals_get(now_utc - timedelta(minutes=1), now_utc + timedelta(minutes=1)) == ()
    shifted = now_utc + timedelta(hours=2)
    assert [d.symbol for d in mt5.history_deals_get(shifted - timedelta(minutes=1), shifted)] == [
        "",
        "EURUSD",
    ]


# --- manual trades, balance operations -------------------------------------------------------------------------------


def test_manual_trades_carry_client_or_mobile_reasons(mt5):
    ticket = mt5.sim_open_manual("EURUSD", "buy", 0.3, sl=1.08, magic=0, comment="by hand")
    (position,) = mt5.positions_get(ticket=ticket)
    assert (position.reason, position.sl, position.comment) == (mt5.POSITION_REASON_CLIENT, 1.08, "by hand")
    deal = mt5.sim_close_manual(ticket, reason=mt5.ORDER_REASON_MOBILE)
    out = mt5.history_deals_get(position=ticket)[-1]
    assert (out.ticket, out.reason, out.entry) == (deal, mt5.DEAL_REASON_MOBILE, mt5.DEAL_ENTRY_OUT)
    with pytest.raises(SimulatorError):
        mt5.sim_close_manual(ticket)
    with pytest.raises(SimulatorError) as rejected:
        mt5.sim_open_manual("EURUSD", "buy", 0.001)
    assert rejected.value.retcode == mt5.TRADE_RETCODE_INVALID_VOLUME


def test_manual_trading_works_with_algo_trading_off(mt5):
    mt5.sim_set_trade_allowed(False)
    assert mt5.sim_open_manual("EURUSD", "sell", 0.1) > 0


def test_deposit_and_withdrawal_are_balance_deals(mt5):
    mt5.sim_deposit(500)
    mt5.sim_deposit(-200, comment="Withdrawal")
    assert mt5.account_info().balance == 10_300.0
    deals = mt5.history_deals_get(0, mt5.sim_server_time())
    assert [(d.type, d.profit, d.comment) for d in deals[1:]] == [
        (2, 500.0, "Deposit"),
        (2, -200.0, "Withdrawal"),
    ]


# --- pending orders and close-by -------------------------------------------------------------------------------------


def pending(mt5, order_type, price, **extra):
    request = {
        "action": mt5.TRADE_ACTION_PENDING,
        "symbol": "EURUSD",
        "volume": 0.2,
        "type": order_type,
        "price": price,
        "magic": 9,
        "comment": "pending",
        "type_time": mt5.ORDER_TIME_GTC,
        **extra,
    }
    return mt5.order_send(request)


def test_pending_order_lifecycle(mt5):
    placed = pending(mt5, mt5.ORDER_TYPE_BUY_LIMIT, 1.0840, sl=1.0800)
    assert (placed.retcode, placed.deal) == (mt5.TRADE_RETCODE_PLACED, 0)
    (order,) = mt5.orders_get()
    assert (order.ticket, order.state, order.type, order.price_open) == (placed.order, 1, 2, 1.084)
    assert mt5.orders_total() == 1
    mt5.sim_set_price("EURUSD", 1.08380, 1.08390)  # ask <= 1.0840 -> fills
    assert mt5.orders_get() == ()
    (position,) = mt5.positions_get()
    assert (position.ticket, position.sl, position.magic, position.volume) == (placed.order, 1.08, 9, 0.2)
    (history,) = mt5.history_orders_get(ticket=placed.order)
    assert history.state == mt5.ORDER_STATE_FILLED


def test_pending_order_price_checks_modify_and_remove(mt5):
    assert pending(mt5, mt5.ORDER_TYPE_BUY_LIMIT, 1.0860).retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    assert pending(mt5, mt5.ORDER_TYPE_SELL_STOP, 1.0860).retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    placed = pending(mt5, mt5.ORDER_TYPE_SELL_STOP, 1.0800)
    assert placed.retcode == mt5.TRADE_RETCODE_PLACED
    modify = {"action": mt5.TRADE_ACTION_MODIFY, "order": placed.order, "price": 1.0790, "type_time": 0}
    assert mt5.order_send(modify).retcode == 10009
    assert mt5.order_send(modify).retcode == mt5.TRADE_RETCODE_NO_CHANGES
    assert mt5.orders_get(ticket=placed.order)[0].price_open == 1.079
    assert mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": placed.order}).retcode == 10009
    assert mt5.orders_get() == ()
    assert mt5.history_orders_get(ticket=placed.order)[0].state == mt5.ORDER_STATE_CANCELED


def test_pending_order_expires(mt5):
    expiry = mt5.sim_server_time() + 60
    placed = pending(
        mt5, mt5.ORDER_TYPE_BUY_STOP, 1.0900, type_time=mt5.ORDER_TIME_SPECIFIED, expiration=expiry
    )
    assert placed.retcode == mt5.TRADE_RETCODE_PLACED
    mt5.sim_advance(120)
    assert mt5.history_orders_get(ticket=placed.order)[0].state == mt5.ORDER_STATE_EXPIRED
    past = {"type_time": mt5.ORDER_TIME_SPECIFIED, "expiration": expiry - 3600}
    assert (
        pending(mt5, mt5.ORDER_TYPE_BUY_STOP, 1.0900, **past).retcode == mt5.TRADE_RETCODE_INVALID_EXPIRATION
    )


def test_close_by(mt5):
    buy = market(mt5, "buy", 1.0)
    mt5.sim_set_price("EURUSD", 1.08600, 1.08610)
    sell = market(mt5, "sell", 0.4)
    request = {"action": mt5.TRADE_ACTION_CLOSE_BY, "position": buy.order, "position_by": sell.order}
    result = mt5.order_send(request)
    assert result.retcode == 10009
    (remaining,) = mt5.positions_get()
    assert (remaining.ticket, remaining.volume) == (buy.order, 0.6)
    by_deals = list(mt5.history_deals_get(ticket=result.order))
    assert {d.entry for d in by_deals} == {mt5.DEAL_ENTRY_OUT_BY}
    assert sum(d.profit for d in by_deals) == pytest.approx(0.4 * 100_000 * (1.0860 - 1.0851))


def test_return_filling_is_accepted_in_exchange_execution(mt5):
    request = {"type_filling": mt5.ORDER_FILLING_RETURN}
    assert market(mt5, "buy", 0.1, "XAUUSD", **request).retcode == mt5.TRADE_RETCODE_INVALID_FILL
    mt5.sim_set_symbol("XAUUSD", exemode=mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE)
    assert market(mt5, "buy", 0.1, "XAUUSD", **request).retcode == 10009


def test_positions_get_filters(mt5):
    market(mt5, "buy", 0.1)
    market(mt5, "buy", 0.1, "USDJPY")
    gold = market(mt5, "sell", 0.1, "XAUUSD", type_filling=mt5.ORDER_FILLING_IOC)
    assert [p.symbol for p in mt5.positions_get(group="*USD*,!EUR*")] == ["USDJPY", "XAUUSD"]
    assert [p.symbol for p in mt5.positions_get(symbol="EURUSD")] == ["EURUSD"]
    assert [p.ticket for p in mt5.positions_get(ticket=gold.order)] == [gold.order]
    assert mt5.positions_get(symbol="EURUSD", ticket=gold.order)[0].symbol == "EURUSD"  # symbol wins
    assert mt5.positions_total() == 3


def test_official_close_helper_recipe_works(mt5):
    """The module's own Close() helper sends no type_filling and deviation=10 (REFERENCE §9)."""
    market(mt5, "buy", 0.2)
    (position,) = mt5.positions_get()
    tick = mt5.symbol_info_tick("EURUSD")
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": position.volume,
        "type": mt5.ORDER_TYPE_SELL,
        "price": tick.bid,
        "deviation": 10,
        "position": position.ticket,
    }
    assert mt5.order_send(request).retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.positions_get() == ()


@pytest.mark.parametrize(
    ("order_type", "price", "stoplimit", "trigger", "fill"),
    [
        ("ORDER_TYPE_BUY_STOP_LIMIT", 1.0870, 1.0865, (1.08700, 1.08710), (1.08640, 1.08650)),
        ("ORDER_TYPE_SELL_STOP_LIMIT", 1.0830, 1.0835, (1.08290, 1.08300), (1.08360, 1.08370)),
    ],
)
def test_stop_limit_orders_become_limits_then_fill(mt5, order_type, price, stoplimit, trigger, fill):
    placed = pending(mt5, getattr(mt5, order_type), price, stoplimit=stoplimit)
    assert placed.retcode == mt5.TRADE_RETCODE_PLACED
    mt5.sim_set_price("EURUSD", *trigger)
    (order,) = mt5.orders_get()
    assert order.type in (mt5.ORDER_TYPE_BUY_LIMIT, mt5.ORDER_TYPE_SELL_LIMIT)
    assert order.price_open == stoplimit
    assert mt5.positions_total() == 0
    mt5.sim_set_price("EURUSD", *fill)
    assert mt5.orders_get() == ()
    assert mt5.positions_get()[0].ticket == placed.order
