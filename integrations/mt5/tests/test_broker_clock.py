"""The broker clock offset (issue 9 item 8): estimated only from a tick seen to arrive within 60 s, of a symbol the
account trades (by its terminal name, suffix included), rounded to whole quarter-hours, re-probed daily, and flagged
as unknown until then — never silently taken as UTC."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from integrations.mt5.simulated import SimClock, SimulatedTerminal
from integrations.mt5.terminal import TerminalGateway, estimate_offset

START = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # a Tuesday, markets open
UTC_PLUS_3 = 3 * 3600


def broker(*, symbols=("EURUSD.m",), offset=UTC_PLUS_3) -> SimulatedTerminal:
    """A UTC+3 broker whose symbols carry a suffix; the account holds one position."""
    clock = SimClock.fixed(START, server_utc_offset=offset)
    terminal = SimulatedTerminal(
        login=4401, password=None, symbols=list(symbols), clock=clock, sleep=lambda s: None
    )
    terminal.sim_open_manual(symbols[0], "buy", "0.1")
    return terminal


def gateway(terminal: SimulatedTerminal) -> TerminalGateway:
    g = TerminalGateway(
        terminal,
        login=4401,
        password="",
        server=terminal.server,
        clock=lambda: terminal.clock.utc_ms() / 1000,
        offset_wait_seconds=0,  # a virtual clock: polling would only wait (the real-clock case has its own test)
    )
    g.connect()
    return g


@pytest.mark.parametrize(
    ("server_epoch", "now", "expected"),
    [
        (1_000_000 + 10800, 1_000_000.0, 10800),  # UTC+3
        (1_000_000 + 10800 - 40, 1_000_000.0, 10800),  # a 40 s old tick still rounds right
        (1_000_000 - 16200, 1_000_000.0, -16200),  # UTC-4:30
        (1_000_000 + 20700 + 5, 1_000_000.0, 20700),  # UTC+5:45 (quarter-hours)
        (1_000_000 + 10800 - 90, 1_000_000.0, None),  # 90 s off the grid: not a fresh tick
        (1_000_000 + 20 * 3600, 1_000_000.0, None),  # beyond any real offset
    ],
)
def test_estimate_offset_rounds_to_quarter_hours(server_epoch, now, expected):
    # A tick exactly 15 or 30 min old lands on the grid too: that is why only ticks seen arriving are used (below).
    assert estimate_offset(server_epoch, now) == expected


def test_a_utc_plus_3_broker_is_measured_from_its_own_suffixed_symbol():
    terminal = broker()
    g = gateway(terminal)
    # Connecting reads the held symbol's tick but cannot tell its age: unknown, and said so.
    assert g.server_utc_offset is None
    assert g.server_utc_offset_source == "unknown"
    assert g.account().server_utc_offset_known is False
    terminal.sim_advance(10)  # the next sync: EURUSD.m ticked in between, so its newest tick is < 60 s old
    state = g.account()
    assert g.server_utc_offset == UTC_PLUS_3
    assert g.server_utc_offset_source == "estimated"
    assert g.server_utc_offset_measured_at == terminal.clock.now()
    assert state.server_utc_offset_known is True
    assert state.server_time.utcoffset() == timedelta(hours=3)
    assert g.tick("EURUSD.m").time <= terminal.clock.now()


def test_an_old_tick_never_sets_the_offset():
    terminal = broker()
    terminal.sim_set_feed("EURUSD.m", "frozen")
    terminal.sim_advance(30 * 60)  # the last quote is half an hour old (was read as UTC+2:30 before)
    g = gateway(terminal)
    for _ in range(5):
        terminal.sim_advance(10)
        assert g.account().server_utc_offset_known is False
        g.tick("EURUSD.m")
    assert g.server_utc_offset is None
    health = g.health()
    assert (health.server_utc_offset, health.server_utc_offset_source) == (None, "unknown")
    # The market wakes up: the first tick seen arriving sets it.
    terminal.sim_set_feed("EURUSD.m", "walk")
    terminal.sim_advance(5)
    g.tick("EURUSD.m")
    assert g.server_utc_offset == UTC_PLUS_3


def test_ticks_read_further_apart_than_a_minute_prove_nothing():
    terminal = broker()
    g = gateway(terminal)
    terminal.sim_advance(61)
    g.tick("EURUSD.m")
    assert g.server_utc_offset is None
    terminal.sim_advance(10)
    g.tick("EURUSD.m")
    assert g.server_utc_offset == UTC_PLUS_3


def test_the_estimate_is_re_probed_daily_and_follows_a_dst_change():
    terminal = broker()
    g = gateway(terminal)
    terminal.sim_advance(10)
    g.account()
    measured = g.server_utc_offset_measured_at
    terminal.sim_set_feed("EURUSD.m", "frozen")
    terminal.sim_advance(3 * 3600)
    g.account()
    assert g.server_utc_offset_measured_at == measured  # nothing fresh: the estimate stands, with its age
    # The broker moves to UTC+2 (DST ends); a day later the daily re-probe sees it without any tick() call.
    terminal.clock.server_utc_offset = timedelta(hours=2)
    terminal.sim_set_feed("EURUSD.m", "walk")
    terminal.sim_advance(24 * 3600)
    g.account()  # due: re-probes the traded symbols
    terminal.sim_advance(10)
    g.account()
    assert g.server_utc_offset == 2 * 3600
    assert g.server_utc_offset_measured_at == terminal.clock.now()


def test_a_configured_offset_is_never_probed():
    terminal = broker()
    g = TerminalGateway(
        terminal,
        login=4401,
        password="",
        server=terminal.server,
        server_utc_offset=UTC_PLUS_3,
        clock=lambda: terminal.clock.utc_ms() / 1000,
    )
    g.connect()
    assert terminal.call_counts["symbol_info_tick"] == 0
    assert g.account().server_utc_offset_known is True
    assert g.health().server_utc_offset_source == "configured"


def test_on_connect_a_live_market_is_polled_briefly_for_a_tick_seen_arriving():
    clock = SimClock.real(server_utc_offset=UTC_PLUS_3)
    terminal = SimulatedTerminal(login=4401, password=None, symbols=["GBPUSD.r"], clock=clock)
    terminal.sim_set_market_open("GBPUSD.r", True)
    terminal.sim_open_manual("GBPUSD.r", "sell", "0.1")
    g = TerminalGateway(terminal, login=4401, password="", server=terminal.server, clock=time.time)
    g.connect()  # the simulator ticks every second: measured before the first sync reads anything
    assert g.server_utc_offset == UTC_PLUS_3
    assert g.account().server_time.utcoffset() == timedelta(hours=3)


def test_while_the_offset_is_unknown_the_deal_window_still_holds_every_recent_deal():
    """Found by the bridge-restart chaos test: taken as UTC, a UTC+3 broker's deposit of a moment ago lay three hours
    'in the future', outside [now - look-back, now + 1 h]; once the offset was measured the deposit showed up as a
    new one and the guards moved the peak by it a second time (a 50 % drawdown on a flat account)."""
    terminal = broker()
    terminal.sim_set_feed("EURUSD.m", "frozen")  # no tick seen arriving: the offset stays unknown
    terminal.sim_advance(30 * 60)
    g = gateway(terminal)
    deposit = terminal.sim_deposit("5000")
    now = datetime.fromtimestamp(terminal.clock.utc_ms() / 1000, tz=UTC)
    assert g.server_utc_offset is None
    deals = g.deals(since=now - timedelta(minutes=5), until=now + timedelta(hours=1))
    assert deposit in {deal.ticket for deal in deals}
    # Once measured, the same window is exact again.
    terminal.sim_set_feed("EURUSD.m", "walk")
    terminal.sim_advance(5)
    g.tick("EURUSD.m")
    assert g.server_utc_offset == UTC_PLUS_3
    assert deposit in {
        d.ticket for d in g.deals(since=now - timedelta(minutes=5), until=now + timedelta(hours=1))
    }
    assert not g.deals(since=now + timedelta(minutes=1), until=now + timedelta(hours=1))
