"""Market guard on the symbols an account holds: spread against its median and a cap, stale quotes, gaps; alerts,
and closing only when the owner set the guard to act."""

from datetime import timedelta

import pytest

from guards.models import AlertKind, GuardAlert, GuardState
from guards.services import guard_settings_update
from guards.services.market import gap_percent, session_open, spread_points
from guards.tests.conftest import START, evaluate_reading, make_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def quick_median():
    guard_settings_update(
        actor=None,
        values={
            "market_spread_min_samples": 3,
            "daily_loss_warning_percent": None,
            "daily_loss_critical_percent": None,
        },
    )


def _tick(account, sim, gateway, seconds):
    sim.sim_set_time(START + timedelta(seconds=seconds))
    snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=seconds))
    return evaluate_reading(
        account=account, snapshot=snapshot, positions=list(gateway.positions()), gateway=gateway
    )


def _market_levels(account):
    return list(
        GuardAlert.objects.filter(account=account, guard="market", kind=AlertKind.GUARD_LEVEL)
        .order_by("pk")
        .values_list("symbol", "level", "detail__reason")
    )


def test_pure_helpers():
    from decimal import Decimal

    assert spread_points(bid=Decimal("1.08500"), ask=Decimal("1.08530"), point=Decimal("0.00001")) == 30
    assert gap_percent(previous_close=Decimal("100"), open_=Decimal("94")) == Decimal("6.0000")
    assert session_open(server_weekday=0, trade_mode=4) is True
    assert session_open(server_weekday=5, trade_mode=4) is False
    assert session_open(server_weekday=2, trade_mode=0) is False


def test_spread_against_its_median_warns_then_clears(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    for second in (0, 10, 20):
        _tick(account, sim, gateway, second)  # 10-point spread: the median
    sim.sim_set_price("EURUSD", "1.08500", "1.08540")  # 40 points > 3 x 10
    _tick(account, sim, gateway, 30)
    sim.sim_set_price("EURUSD", "1.08500", "1.08510")
    _tick(account, sim, gateway, 40)
    assert _market_levels(account) == [("EURUSD", "warning", "spread"), ("EURUSD", "normal", "")]
    warning = GuardAlert.objects.filter(account=account, guard="market").order_by("pk").first()
    assert warning.value is not None


def test_no_median_judgement_before_enough_readings(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    sim.sim_set_price("EURUSD", "1.08500", "1.08600")
    _tick(account, sim, gateway, 0)
    assert _market_levels(account) == []


def test_spread_over_the_cap_is_critical_and_marks_positions_without_closing(
    account, sim, gateway, clock, dispatched, quick_median
):
    guard_settings_update(actor=None, values={"market_spread_cap_points": {"EURUSD": 20}})
    ticket = sim.sim_open_manual("EURUSD", "buy", "0.1")
    sim.sim_set_price("EURUSD", "1.08500", "1.08530")
    _tick(account, sim, gateway, 0)
    assert _market_levels(account) == [("EURUSD", "critical", "spread_cap")]
    marked = GuardAlert.objects.get(account=account, kind=AlertKind.MARKET_MARKED)
    assert marked.detail["tickets"] == [ticket]
    assert marked.detail["closing"] is False
    assert dispatched.closes == []


def test_critical_market_closes_when_the_owner_set_the_guard_to_act(
    account, sim, gateway, clock, dispatched, quick_median
):
    guard_settings_update(
        actor=None, values={"market_spread_cap_points": {"EURUSD": 20}, "market_guard_action": "close"}
    )
    ticket = sim.sim_open_manual("EURUSD", "buy", "0.1")
    sim.sim_set_price("EURUSD", "1.08500", "1.08530")
    _tick(account, sim, gateway, 0)
    _tick(account, sim, gateway, 10)  # same episode: not dispatched again
    (close,) = dispatched.closes
    assert close["tickets"] == [ticket]
    assert close["trigger"] == "market"
    assert close["trigger_key"].startswith("market:EURUSD:")


def test_stale_quotes_warn_while_the_session_is_open(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    _tick(account, sim, gateway, 0)
    sim.sim_set_feed("EURUSD", "frozen")
    _tick(account, sim, gateway, 50)
    assert _market_levels(account) == []
    _tick(account, sim, gateway, 130)
    assert _market_levels(account) == [("EURUSD", "warning", "stale_quote")]


class _Bars:
    """The gateway with scripted M1 bars (oldest first), everything else real."""

    def __init__(self, gateway, bars):
        self._gateway = gateway
        self._bars = bars
        self.asked = []

    def bars(self, *, symbol, timeframe, count, start_pos=0):
        self.asked.append((symbol, timeframe, count, start_pos))
        return self._bars

    def __getattr__(self, name):
        return getattr(self._gateway, name)


def _bar(minute, open_, close):
    from decimal import Decimal

    from integrations.mt5.types import Bar

    time = START + timedelta(minutes=minute)
    return Bar(time=time, server_time=time, open=Decimal(open_), high=Decimal(open_), low=Decimal(close),
               close=Decimal(close), tick_volume=60, spread=10)  # fmt: skip


@pytest.mark.parametrize(("open_", "level"), [("1.15000", "critical"), ("1.13000", None)])
def test_a_gap_between_closed_bars_is_critical(account, sim, gateway, clock, quick_median, open_, level):
    sim.sim_open_manual("EURUSD", "sell", "0.01")
    scripted = _Bars(gateway, [_bar(0, "1.08500", "1.08500"), _bar(1, open_, open_)])  # +6.0 % / +4.1 %
    sim.sim_set_time(START + timedelta(seconds=125))
    snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=125))
    evaluate_reading(
        account=account, snapshot=snapshot, positions=list(gateway.positions()), gateway=scripted
    )
    assert scripted.asked == [("EURUSD", 1, 2, 1)]  # the newest closed M1 bar and the one before
    assert _market_levels(account) == ([("EURUSD", level, "gap")] if level else [])


def test_a_gap_on_the_simulated_terminal(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "sell", "0.01")
    sim.sim_set_time(START + timedelta(seconds=30))
    sim.sim_set_feed("EURUSD", "frozen")  # no quotes across the minute: the next bar opens at the new price
    sim.sim_set_time(START + timedelta(seconds=90))
    sim.sim_set_price("EURUSD", "1.15000", "1.15010")
    _tick(account, sim, gateway, 125)
    assert _market_levels(account) == [("EURUSD", "critical", "gap")]


def test_market_memory_forgets_symbols_no_longer_held(account, sim, gateway, clock, quick_median):
    ticket = sim.sim_open_manual("EURUSD", "buy", "0.1")
    _tick(account, sim, gateway, 0)
    assert set(GuardState.objects.get(account=account).market) == {"EURUSD"}
    sim.sim_close_manual(ticket)
    _tick(account, sim, gateway, 10)
    assert GuardState.objects.get(account=account).market == {}


def test_an_unreadable_symbol_never_breaks_the_evaluation(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    sim.sim_inject_fault("symbol_info_tick", (-10005, "IPC timeout"), 5)
    result = _tick(account, sim, gateway, 0)
    assert result.fresh
    assert _market_levels(account) == []
