"""The market guard's shared memory: symbol specs and closed bars are read once per broker server and symbol, not
once per account, and never kept past the moment the terminal could answer differently."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.services import trading_account_create
from guards.services.market import market_cache_clear
from guards.tests.conftest import SERVER, START, evaluate_reading, make_snapshot
from integrations.mt5.types import Bar

pytestmark = pytest.mark.django_db


class _Counting:
    """The gateway, counting the calls the market guard makes."""

    def __init__(self, gateway, bars=None):
        self._gateway = gateway
        self._bars = bars
        self.calls: list[str] = []

    def symbol(self, name):
        self.calls.append("symbol")
        return self._gateway.symbol(name)

    def bars(self, *, symbol, timeframe, count, start_pos=0):
        self.calls.append("bars")
        if self._bars is not None:
            return self._bars
        return self._gateway.bars(symbol=symbol, timeframe=timeframe, count=count, start_pos=start_pos)

    def __getattr__(self, name):
        return getattr(self._gateway, name)


def _bar(minute):
    time = START + timedelta(minutes=minute)
    price = Decimal("1.08500")
    return Bar(
        time=time, server_time=time, open=price, high=price, low=price, close=price, tick_volume=60, spread=10
    )


def _evaluate(account, sim, gateway, seconds):
    at = START + timedelta(seconds=seconds)
    sim.sim_set_time(at)
    snapshot = make_snapshot(account, equity=9_990, at=at)
    return evaluate_reading(
        account=account, snapshot=snapshot, positions=list(gateway.positions()), gateway=gateway
    )


@pytest.fixture
def second_account(owner):
    return trading_account_create(owner=owner, login=6002, server=SERVER)


def test_accounts_on_one_server_share_the_spec_and_the_closed_bars(
    account, second_account, sim, gateway, clock
):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    closed = [_bar(0), _bar(1)]  # at 2:05 the newest closed M1 bar is 1:00
    first, second = _Counting(gateway, closed), _Counting(gateway, closed)
    _evaluate(account, sim, first, 125)
    _evaluate(second_account, sim, second, 126)
    assert first.calls == ["symbol", "bars"]
    assert second.calls == []  # same server, same minute: nothing asked again (the tick is still read)
    _evaluate(account, sim, first, 179)
    assert first.calls == ["symbol", "bars"]
    _evaluate(account, sim, first, 180)  # a new bar may have closed: both asked again
    assert first.calls == ["symbol", "bars", "symbol", "bars"]


def test_a_lagging_answer_is_not_kept(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    lagging = _Counting(gateway, [_bar(-1), _bar(0)])  # at 2:05 no quote yet in the 2:00 bar
    _evaluate(account, sim, lagging, 125)
    _evaluate(account, sim, lagging, 135)
    assert lagging.calls.count("bars") == 2


def test_another_server_does_not_share(account, owner, sim, gateway, clock):
    other = trading_account_create(owner=owner, login=6003, server="Other-Server")
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    closed = [_bar(0), _bar(1)]
    first, second = _Counting(gateway, closed), _Counting(gateway, closed)
    _evaluate(account, sim, first, 125)
    _evaluate(other, sim, second, 126)
    assert second.calls == ["symbol", "bars"]


def test_a_clock_override_or_an_explicit_clear_starts_afresh(account, sim, gateway, clock):
    from guards.clock import clock_override

    sim.sim_open_manual("EURUSD", "buy", "0.1")
    counting = _Counting(gateway, [_bar(0), _bar(1)])
    _evaluate(account, sim, counting, 125)
    market_cache_clear()
    _evaluate(account, sim, counting, 130)
    with clock_override(now=sim.clock.now, sleep=lambda seconds: None):
        _evaluate(account, sim, counting, 135)
    assert counting.calls == ["symbol", "bars"] * 3
