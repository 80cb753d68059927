"""SimulatedTerminal M1 bars under scripted prices and clock jumps: ordered, unique, consistent, closed bars frozen."""

import random
from datetime import UTC, datetime, timedelta

from integrations.mt5 import constants as c
from integrations.mt5.simulated import SimClock, SimulatedTerminal

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 07:00 UTC = 09:00 on the (UTC+2) server clock
SERVER_START = int(START.timestamp()) + 2 * 3600


def make_terminal(seed=3):
    terminal = SimulatedTerminal(login=5001, password="pw", clock=SimClock.fixed(START), seed=seed)
    assert terminal.initialize()
    return terminal


def m1(terminal, count, symbol="EURUSD"):
    rates = terminal.copy_rates_from_pos(symbol, c.TIMEFRAME_M1, 0, count)
    assert rates is not None, terminal.last_error()
    return rates


def assert_well_formed(rates):
    times = [rate.time for rate in rates]
    assert times == sorted(set(times)), f"bar times not strictly increasing: {times}"
    for rate in rates:
        assert rate.time % 60 == 0
        assert rate.high >= max(rate.open, rate.close), rate
        assert rate.low <= min(rate.open, rate.close), rate


def test_set_price_after_set_time_opens_a_new_bar_and_keeps_the_old_one():
    mt5 = make_terminal()
    mt5.sim_set_price("EURUSD", 1.08)  # 09:00:00 server
    mt5.sim_set_time(START + timedelta(seconds=60))
    mt5.sim_set_price("EURUSD", 1.081)  # 09:01:00
    closed_0900 = m1(mt5, 2)[0]
    mt5.sim_set_time(START + timedelta(seconds=125))  # 09:02:05

    rates = m1(mt5, 4)

    assert [rate.time - SERVER_START for rate in rates] == [-60, 0, 60, 120]
    assert_well_formed(rates)
    before, at_0900, at_0901, current = rates
    assert at_0900 == closed_0900  # a closed bar is never rewritten
    assert at_0900.low <= 1.08 <= at_0900.high
    assert at_0900.close == 1.08
    assert (at_0901.open, at_0901.high, at_0901.low, at_0901.close) == (1.08, 1.081, 1.08, 1.081)
    assert current.open == current.high == current.low == current.close == 1.081  # flat feed: price held
    assert current.time == mt5.sim_server_time() // 60 * 60  # position 0 = the forming bar
    assert before.time == at_0900.time - 60


def test_set_price_in_a_later_minute_fills_the_gap_with_the_held_price():
    mt5 = make_terminal()
    mt5.sim_set_price("EURUSD", 1.08)
    mt5.sim_set_time(START + timedelta(seconds=300))  # nobody looks at EURUSD meanwhile
    mt5.sim_set_price("EURUSD", 1.09)

    rates = m1(mt5, 6)

    assert [rate.time - SERVER_START for rate in rates] == [0, 60, 120, 180, 240, 300]
    assert_well_formed(rates)
    assert all(rate.open == rate.high == rate.low == rate.close == 1.08 for rate in rates[1:-1])
    assert (rates[-1].open, rates[-1].close) == (1.08, 1.09)


def test_random_scripts_keep_bars_ordered_consistent_and_closed_bars_frozen():
    rng = random.Random(20260302)
    symbols = ("EURUSD", "GBPUSD")
    for run in range(8):
        mt5 = make_terminal(seed=run)
        seen: dict[str, dict[int, tuple]] = {symbol: {} for symbol in symbols}
        base = {
            symbol: mt5.symbol_info_tick(symbol).bid for symbol in symbols
        }  # not looked up later: that syncs
        for step in range(60):
            symbol = rng.choice(symbols)
            action = rng.choice(("advance", "set_time", "set_price", "set_price"))
            if action == "advance":
                mt5.sim_advance(rng.choice((0, 1, 7, 30, 59, 60, 61, 125, 600)))
            elif action == "set_time":
                mt5.sim_set_time(mt5.sim_now() + timedelta(seconds=rng.choice((0, 1, 45, 60, 125, 3600))))
            else:
                bid = round(base[symbol] + rng.randint(-300, 300) * 1e-5, 5)
                mt5.sim_set_price(symbol, bid, walk=rng.random() < 0.3)
                assert m1(mt5, 1, symbol)[-1].close == bid, (run, step)
            if rng.random() < 0.4:  # look at the bars only sometimes: looking must not change them
                continue
            for name in symbols:
                rates = m1(mt5, 200, name)
                assert_well_formed(rates)
                forming = mt5.sim_server_time() // 60 * 60
                assert rates[-1].time == forming, (run, step, name)
                for rate in rates[:-1]:  # closed bars
                    assert seen[name].setdefault(rate.time, tuple(rate)) == tuple(rate), (
                        run,
                        step,
                        name,
                        rate,
                    )
