"""The market guard's spread memory is a bounded summary: its size does not grow with time, and its median is the
median of the readings of the last hour (exact for spreads under 64 points, within a bin's ~2 % above)."""

import json
import random
import statistics
from decimal import Decimal

import pytest

from guards.models import GuardState
from guards.services import guard_settings_update
from guards.services.market import SPREAD_SLOTS, SpreadHistogram, spread_bin, spread_bin_value
from guards.tests.conftest import START
from guards.tests.test_market import _market_levels, _tick

HOUR = 3600


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


def _histogram(readings, *, window=HOUR):
    histogram = SpreadHistogram(slot_seconds=window // SPREAD_SLOTS)
    for epoch, points in readings:
        histogram.add(epoch=epoch, points=points)
    return histogram


def test_the_median_is_exact_for_small_spreads():
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 11, 359, 360):
        values = [rng.randint(0, 63) for _ in range(size)]
        histogram = _histogram([(1_000_000 + 10 * i, v) for i, v in enumerate(values)])
        assert histogram.median() == Decimal(str(statistics.median(values))), values
        assert histogram.count() == size


def test_the_median_of_wide_spreads_is_within_a_bin():
    rng = random.Random(11)
    values = [rng.randint(64, 50_000) for _ in range(301)]
    median = _histogram([(1_000_000 + i, v) for i, v in enumerate(values)]).median()
    exact = statistics.median(values)
    assert abs(median - Decimal(exact)) / Decimal(exact) < Decimal("0.025")
    assert all(spread_bin(v) >= spread_bin(v - 1) for v in range(1, 5000))  # monotonic bins
    assert spread_bin_value(spread_bin(30)) == 30


def test_only_whole_slots_inside_the_window_count():
    slot = HOUR // SPREAD_SLOTS
    now = 100 * slot + 17  # a little into a slot
    histogram = _histogram([(now - HOUR - 1, 1000), (now - HOUR + slot, 5), (now - 10, 5)])
    histogram.forget_before(epoch=now - HOUR)
    assert histogram.count() == 2  # the reading from before the window is gone with its slot
    assert histogram.median() == 5


@pytest.mark.django_db
def test_the_stored_memory_stays_small_after_hours_of_syncs(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    sizes = []
    for second in range(0, 3 * HOUR, 10 * 60):  # three hours, a reading every 10 minutes ...
        for extra in (0, 10, 20):  # ... three in a row
            _tick(account, sim, gateway, second + extra)
        sizes.append(len(json.dumps(GuardState.objects.get(account=account).market)))
    assert max(sizes) < 1_000
    assert max(sizes[len(sizes) // 2 :]) <= max(sizes[: len(sizes) // 2])  # no growth once the window is full
    memory = GuardState.objects.get(account=account).market["EURUSD"]
    assert "spreads" not in memory
    assert len(memory["spread"]["slots"]) <= SPREAD_SLOTS


@pytest.mark.django_db
def test_an_old_list_of_readings_is_folded_in(account, sim, gateway, clock, quick_median):
    sim.sim_open_manual("EURUSD", "buy", "0.1")
    _tick(account, sim, gateway, 0)
    state = GuardState.objects.get(account=account)
    epoch = int(START.timestamp())
    state.market["EURUSD"] = {"level": "normal", "spreads": [[epoch + i, 10] for i in range(1, 10)]}
    state.save(update_fields=["market"])
    sim.sim_set_price("EURUSD", "1.08500", "1.08540")  # 40 points > 3 x the old median of 10
    _tick(account, sim, gateway, 10)
    assert _market_levels(account) == [("EURUSD", "warning", "spread")]
    memory = GuardState.objects.get(account=account).market["EURUSD"]
    assert "spreads" not in memory
    assert SpreadHistogram.load(memory, window_seconds=HOUR).count() == 10  # the 9 old readings + this one
