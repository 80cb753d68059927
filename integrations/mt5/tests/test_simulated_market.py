"""SimulatedTerminal market: deterministic walk, SL/TP/stop-out triggering, margin/profit by calc mode, sessions."""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.mt5.simulated import SimClock, SimulatedTerminal, build_spec

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def make_terminal(seed=3, **options):
    options = {"login": 5001, "password": "pw", "clock": SimClock.fixed(START), "seed": seed, **options}
    terminal = SimulatedTerminal(**options)
    assert terminal.initialize()
    return terminal


@pytest.fixture
def mt5():
    return make_terminal()


def ticks(terminal, symbol, seconds, step=7):
    out = []
    for _ in range(seconds // step):
        terminal.sim_advance(step)
        tick = terminal.symbol_info_tick(symbol)
        out.append((tick.time_msc, tick.bid, tick.ask))
    return out


# --- the walk --------------------------------------------------------------------------------------------------------


def test_same_seed_same_prices():
    assert ticks(make_terminal(seed=11), "EURUSD", 700) == ticks(make_terminal(seed=11), "EURUSD", 700)


def test_different_seed_different_prices():
    assert ticks(make_terminal(seed=11), "EURUSD", 700) != ticks(make_terminal(seed=12), "EURUSD", 700)


def test_the_path_does_not_depend_on_how_often_one_looks():
    often = make_terminal(seed=5)
    ticks(often, "GBPUSD", 600, step=3)
    rarely = make_terminal(seed=5)
    rarely.sim_advance(600)
    assert often.symbol_info_tick("GBPUSD") == rarely.symbol_info_tick("GBPUSD")


def test_the_walk_is_realistic(mt5):
    previous = mt5.symbol_info_tick("EURUSD")
    for _ in range(50):
        mt5.sim_advance(30)
        tick = mt5.symbol_info_tick("EURUSD")
        spread_points = round((tick.ask - tick.bid) / 0.00001)
        assert 6 <= spread_points <= 20
        assert abs(tick.bid - previous.bid) < 0.005  # no jumps of 50 pips in 30 s
        assert round(tick.bid, 5) == tick.bid
        previous = tick
    us500 = mt5.symbol_info_tick("US500")
    assert (us500.bid / 0.25) == int(us500.bid / 0.25)  # on the 0.25 tick grid


def test_flat_and_frozen_feeds(mt5):
    mt5.sim_set_price("EURUSD", 1.1, 1.1001)
    mt5.sim_advance(30)
    flat = mt5.symbol_info_tick("EURUSD")
    assert (flat.bid, flat.ask, flat.time) == (1.1, 1.1001, mt5.sim_server_time())  # held, still quoting
    mt5.sim_set_feed("EURUSD", "frozen")
    mt5.sim_advance(120)
    assert mt5.symbol_info_tick("EURUSD").time == flat.time  # stale
    mt5.sim_set_feed("EURUSD", "walk")
    mt5.sim_advance(5)
    assert mt5.symbol_info_tick("EURUSD").time == mt5.sim_server_time()


def test_weekly_sessions_close_the_market():
    weekdays = {"EURUSD": {"sessions": [(day, 0, 1440) for day in range(5)]}}
    terminal = make_terminal(symbols=weekdays, tick_interval_ms=10_000)
    terminal.sim_set_time(datetime(2026, 3, 7, 10, 0, tzinfo=UTC))  # Saturday
    before = terminal.symbol_info_tick("EURUSD").time
    terminal.sim_advance(600)
    assert terminal.symbol_info_tick("EURUSD").time == before  # no ticks over the weekend
    tick = terminal.symbol_info_tick("EURUSD")
    result = terminal.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask, "deviation": 10}
    )
    assert result.retcode == terminal.TRADE_RETCODE_MARKET_CLOSED


def test_real_clock_terminal_reports_now_in_server_time():
    terminal = SimulatedTerminal(login=7, password="pw", clock=SimClock.real(server_utc_offset=3 * 3600))
    assert terminal.initialize()
    now = datetime.now(tz=UTC)
    server_now = (now + timedelta(hours=3)).timestamp()
    assert abs(terminal.symbol_info_tick("EURUSD").time - server_now) < 5


# --- SL / TP / stop-out ----------------------------------------------------------------------------------------------


def test_buy_stop_loss_fires_on_the_bid_with_reason_sl(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    ticket = mt5.sim_open_manual("EURUSD", "buy", 1.0, sl=1.0800, reason=mt5.ORDER_REASON_EXPERT)
    mt5.sim_set_price("EURUSD", 1.08005, 1.07995 + 0.0002)  # ask above SL, bid above SL: nothing
    assert mt5.positions_total() == 1
    mt5.sim_set_price("EURUSD", 1.07990, 1.08000)
    assert mt5.positions_get() == ()
    out = mt5.history_deals_get(position=ticket)[-1]
    assert (out.entry, out.reason, out.comment, out.price) == (
        mt5.DEAL_ENTRY_OUT,
        mt5.DEAL_REASON_SL,
        "[sl 1.08000]",
        1.0799,
    )
    assert out.profit == pytest.approx(-520.0)
    (order,) = mt5.history_orders_get(ticket=out.order)
    assert (order.reason, order.state, order.type) == (mt5.ORDER_REASON_SL, mt5.ORDER_STATE_FILLED, 1)


def test_sell_take_profit_fires_on_the_ask(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    ticket = mt5.sim_open_manual("EURUSD", "sell", 0.5, tp=1.0800)
    mt5.sim_set_price("EURUSD", 1.07995, 1.08005)  # bid below TP but ask not yet
    assert mt5.positions_total() == 1
    mt5.sim_set_price("EURUSD", 1.07990, 1.08000)
    out = mt5.history_deals_get(position=ticket)[-1]
    assert (out.reason, out.comment, out.price, out.profit) == (
        mt5.DEAL_REASON_TP,
        "[tp 1.08000]",
        1.08,
        250.0,
    )


def test_stops_fire_while_the_market_walks(mt5):
    bid = mt5.symbol_info_tick("EURUSD").bid
    ticket = mt5.sim_open_manual("EURUSD", "buy", 0.1, sl=round(bid - 0.0003, 5), tp=round(bid + 0.0003, 5))
    for _ in range(200):
        mt5.sim_advance(60)
        if not mt5.positions_total():
            break
    out = mt5.history_deals_get(position=ticket)[-1]
    assert out.reason in (mt5.DEAL_REASON_SL, mt5.DEAL_REASON_TP)
    assert out.time <= mt5.sim_server_time()


def test_stop_out_closes_the_largest_loss_first(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    mt5.sim_set_price("GBPUSD", 1.26500, 1.26514)
    eur = mt5.sim_open_manual("EURUSD", "buy", 5.0)  # margin 5 425.50
    gbp = mt5.sim_open_manual("GBPUSD", "buy", 1.0)  # margin 1 265.14
    mt5.sim_set_price("EURUSD", 1.07000, 1.07010)  # -7 550 -> equity ~2 436, level ~36 %
    assert mt5.positions_total() == 2
    mt5.sim_set_price("EURUSD", 1.06900, 1.06910)  # -8 050 -> level ~29 % <= 30 %
    assert [p.ticket for p in mt5.positions_get()] == [gbp]
    out = mt5.history_deals_get(position=eur)[-1]
    assert (out.reason, out.entry) == (mt5.DEAL_REASON_SO, mt5.DEAL_ENTRY_OUT)
    assert out.comment.startswith("[so ")
    info = mt5.account_info()
    assert info.margin_level > 30.0


def test_stop_out_in_money_mode(mt5):
    mt5.sim_set_account(margin_so_mode=mt5.ACCOUNT_STOPOUT_MODE_MONEY, margin_so_so=5000)
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    mt5.sim_open_manual("EURUSD", "buy", 1.0)
    mt5.sim_set_price("EURUSD", 1.03000, 1.03010)  # equity 10 000 - 5 510 < 5 000
    assert mt5.positions_total() == 0


def test_equity_is_balance_plus_credit_plus_floating(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    mt5.sim_credit(1000)
    mt5.sim_open_manual("EURUSD", "buy", 1.0)
    mt5.sim_set_price("EURUSD", 1.08700, 1.08710)
    info = mt5.account_info()
    assert (info.balance, info.credit, info.profit, info.equity) == (10_000.0, 1000.0, 190.0, 11_190.0)
    assert (info.margin, info.margin_free) == (1085.1, 10_104.9)
    assert info.margin_level == pytest.approx(11_190 / 1085.1 * 100, abs=0.01)


# --- order_calc_margin / order_calc_profit ---------------------------------------------------------------------------


def test_margin_by_calc_mode(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    buy = mt5.ORDER_TYPE_BUY
    assert (
        mt5.order_calc_margin(buy, "EURUSD", 1.0, 1.085) == 1085.0
    )  # FOREX, EUR margin converted at the price
    assert mt5.order_calc_margin(buy, "USDJPY", 1.0, 150.0) == 1000.0  # FOREX, USD margin
    assert mt5.order_calc_margin(buy, "XAUUSD", 1.0, 2900.0) == 2900.0  # CFDLEVERAGE: 100 oz * 2900 / 100
    assert mt5.order_calc_margin(buy, "XAGUSD", 1.0, 32.5) == 1625.0  # FOREX, XAG margin: 5000/100 * 32.5
    assert mt5.order_calc_margin(buy, "US500", 1.0, 5800.0) == 290.0  # CFDINDEX, rate 0.05
    # CFD in EUR: 1 * 22000 * 0.05 = 1100 EUR, converted at the EURUSD bid
    assert mt5.order_calc_margin(buy, "GER40", 1.0, 22000.0) == pytest.approx(1100 * 1.085)
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_SELL_LIMIT, "EURUSD", 0.1, 1.1) == 110.0


def test_margin_for_other_calc_modes():
    terminal = make_terminal(
        symbols={
            "EURUSD": {"bid": 1.085},
            "USDCHF": {"currency_base": "USD", "currency_profit": "CHF", "currency_margin": "USD", "bid": 0.9},
            "BTCUSD": {
                "trade_calc_mode": 5, "digits": 2, "trade_contract_size": 1, "currency_base": "BTC",
                "currency_profit": "USD", "currency_margin": "BTC", "bid": 60000, "ask": 60050,
            },
            "ES": {
                "trade_calc_mode": 1, "digits": 2, "trade_tick_size": 0.25, "trade_contract_size": 50,
                "margin_initial": 12000, "currency_base": "USD", "currency_profit": "USD", "currency_margin": "USD",
                "bid": 5800, "ask": 5800.25,
            },
        }
    )  # fmt: skip
    buy = terminal.ORDER_TYPE_BUY
    assert terminal.order_calc_margin(buy, "BTCUSD", 0.5, 60000.0) == 30_000.0  # FOREX_NO_LEVERAGE
    assert terminal.order_calc_margin(buy, "ES", 2.0, 5800.0) == 24_000.0  # FUTURES: lots * initial margin
    assert terminal.order_calc_profit(buy, "ES", 1.0, 5800.0, 5801.0) == 50.0  # 4 ticks * 12.50


def test_profit_by_calc_mode_and_conversion(mt5):
    mt5.sim_set_price("EURUSD", 1.08500, 1.08510)
    buy, sell = mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL
    assert mt5.order_calc_profit(buy, "EURUSD", 1.0, 1.085, 1.088) == 300.0
    assert mt5.order_calc_profit(sell, "EURUSD", 1.0, 1.088, 1.085) == 300.0
    # USDJPY: JPY profit converted at the closing price (the docs' 276.54 / 278.09 example)
    assert mt5.order_calc_profit(buy, "USDJPY", 1.0, 108.183, 108.483) == pytest.approx(276.54, abs=0.01)
    assert mt5.order_calc_profit(sell, "USDJPY", 1.0, 108.179, 107.879) == pytest.approx(278.09, abs=0.01)
    assert mt5.order_calc_profit(buy, "XAUUSD", 0.1, 2900.0, 2910.0) == 100.0
    assert mt5.order_calc_profit(buy, "US500", 1.0, 5800.0, 5810.0) == 10.0
    assert mt5.order_calc_profit(buy, "GER40", 1.0, 22000.0, 22100.0) == pytest.approx(
        108.5
    )  # EUR -> USD at bid


def test_calc_functions_are_positional_only(mt5):
    assert mt5.order_calc_margin(action=0, symbol="EURUSD", volume=1.0, price=1.1) is None
    assert mt5.last_error() == (-2, "Invalid arguments")
    assert mt5.order_calc_profit(0, "EURUSD", 1.0, 1.1) is None
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_CLOSE_BY, "EURUSD", 1.0, 1.1) is None
    assert mt5.order_calc_margin(0, "NOPE", 1.0, 1.1) is None
    assert mt5.last_error() == (-1, "Terminal: Call failed")
    assert isinstance(mt5.order_calc_margin(0, "EURUSD", 1.0, 1.1), float)


def test_eur_account_converts_usd_profit():
    terminal = make_terminal(currency="EUR")
    terminal.sim_set_price("EURUSD", 1.25000, 1.25010)
    assert terminal.order_calc_profit(terminal.ORDER_TYPE_BUY, "XAUUSD", 1.0, 2900.0, 2901.0) == round(
        100 / 1.2501, 2
    )
    assert (
        terminal.order_calc_margin(terminal.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.25) == 1000.0
    )  # EUR margin as is
    assert terminal.account_info().currency == "EUR"


def test_build_spec_accepts_mt5_names_and_checks_them():
    spec = build_spec(
        "EURUSD", {"digits": 5, "point": 0.00001, "trade_contract_size": 100000, "volume_max": 100}
    )
    assert (spec.contract_size, spec.volume_max, spec.point) == (100000, 100, spec.point)
    with pytest.raises(ValueError, match="point"):
        build_spec("EURUSD", {"digits": 4, "point": 0.00001})
    with pytest.raises(ValueError, match="unknown symbol field"):
        build_spec("EURUSD", {"colour": "red"})


# --- swaps -----------------------------------------------------------------------------------------------------------


def test_swaps_roll_over_nightly_with_a_triple_wednesday():
    terminal = make_terminal(tick_interval_ms=60_000)  # a coarse grid keeps multi-day tests fast
    terminal.sim_set_price("EURUSD", 1.08500, 1.08510)
    ticket = terminal.sim_open_manual("EURUSD", "buy", 1.0)  # Monday 09:00 server time
    terminal.sim_set_time(datetime(2026, 3, 2, 23, 30, tzinfo=UTC))  # Tuesday 01:30 server
    (position,) = terminal.positions_get()
    assert position.swap == -7.5  # -7.5 points * 0.00001 * 100 000
    terminal.sim_set_time(datetime(2026, 3, 4, 23, 30, tzinfo=UTC))  # Thursday 01:30: Tue + Wed (x3) nights
    (position,) = terminal.positions_get()
    assert position.swap == -37.5
    info = terminal.account_info()
    assert info.equity == pytest.approx(info.balance + position.profit - 37.5)
    terminal.sim_close_manual(ticket)
    out = terminal.history_deals_get(position=ticket)[-1]
    assert out.swap == -37.5
    assert terminal.account_info().balance == pytest.approx(10_000 + out.profit - 37.5)


def test_swaps_can_be_switched_off():
    terminal = make_terminal(tick_interval_ms=60_000, swaps=False)
    terminal.sim_open_manual("EURUSD", "buy", 1.0)
    terminal.sim_set_time(datetime(2026, 3, 3, 23, 30, tzinfo=UTC))
    assert terminal.positions_get()[0].swap == 0.0
