"""Drawdown and daily-loss guards: peak, anchor, confirmation, latch, trip, staleness, halted positions."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from guards.models import AlertKind, BalanceOperation, GuardAlert, GuardState, GuardStatus, Level
from guards.services import guard_settings_update
from guards.services.evaluate import level_step
from guards.tests.conftest import START, evaluate_reading, make_snapshot

pytestmark = pytest.mark.django_db

D = Decimal


def _evaluate(
    account,
    *,
    equity,
    at_seconds,
    balance=10_000,
    credit=0,
    positions=(),
    gateway=None,
    offset_hours=2,
    deals=(),
):
    at = START + timedelta(seconds=at_seconds)
    snapshot = make_snapshot(
        account, equity=equity, balance=balance, credit=credit, at=at, offset_hours=offset_hours
    )
    return evaluate_reading(
        account=account, snapshot=snapshot, positions=list(positions), gateway=gateway, now=at, deals=deals
    )


def _state(account) -> GuardState:
    return GuardState.objects.get(account=account)


def _kinds(account) -> list[tuple[str, str, str]]:
    return list(
        GuardAlert.objects.filter(account=account).order_by("pk").values_list("kind", "guard", "level")
    )


@pytest.fixture
def no_daily_loss():
    guard_settings_update(
        actor=None, values={"daily_loss_warning_percent": None, "daily_loss_critical_percent": None}
    )


# ---------------------------------------------------------------- the confirmation rule, pure


@pytest.mark.parametrize(
    ("readings", "levels"),
    [
        (["12", "12"], ["normal", "warning"]),
        (["12", "5", "12"], ["normal", "normal", "normal"]),
        (["25", "25"], ["normal", "critical"]),
        (["12", "25", "25"], ["normal", "warning", "critical"]),
        (["12", "12", "5"], ["normal", "warning", "normal"]),  # left downward at once
        (["12", "12", "25", "12"], ["normal", "warning", "warning", "warning"]),
    ],
)
def test_level_step_confirms_upward_and_leaves_downward_at_once(readings, levels):
    level, warning_count, critical_count = Level.NORMAL, 0, 0
    seen = []
    for value in readings:
        level, warning_count, critical_count = level_step(
            current=level,
            warning_count=warning_count,
            critical_count=critical_count,
            value=D(value),
            warning=D("10"),
            critical=D("20"),
            confirm=2,
            latched=False,
        )
        seen.append(level)
    assert seen == levels


def test_level_step_critical_latches_while_tripped():
    level, *_ = level_step(
        current=Level.CRITICAL,
        warning_count=3,
        critical_count=3,
        value=D("1"),
        warning=D("10"),
        critical=D("20"),
        confirm=2,
        latched=True,
    )
    assert level == Level.CRITICAL


# ---------------------------------------------------------------- drawdown through the service


def test_peak_only_rises_and_drawdown_is_measured_from_it(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=11_000, at_seconds=10)
    _evaluate(account, equity=10_450, at_seconds=20)
    state = _state(account)
    assert state.peak_equity == D("11000")
    assert state.drawdown_percent == D("5.0000")
    assert state.status == GuardStatus.NORMAL


def test_warning_needs_two_consecutive_readings_then_recovers(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    assert _evaluate(account, equity=8_800, at_seconds=10).status == GuardStatus.NORMAL
    assert _evaluate(account, equity=8_800, at_seconds=20).status == GuardStatus.WARNING
    assert _evaluate(account, equity=9_500, at_seconds=30).status == GuardStatus.NORMAL
    assert _kinds(account) == [
        ("guard_level", "drawdown", "warning"),
        ("guard_level", "drawdown", "normal"),
    ]


def test_a_single_bad_tick_changes_nothing(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=7_000, at_seconds=10)  # 30 %: one reading only
    _evaluate(account, equity=9_900, at_seconds=20)
    assert _state(account).status == GuardStatus.NORMAL
    assert _kinds(account) == []
    assert dispatched.liquidations == []


def test_critical_confirmed_trips_and_schedules_liquidation_after_grace(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=7_900, at_seconds=10)
    result = _evaluate(account, equity=7_800, at_seconds=20)
    state = _state(account)
    assert result.status == GuardStatus.TRIPPED
    assert state.drawdown_level == Level.CRITICAL
    assert state.tripped_at == START + timedelta(seconds=20)
    assert state.liquidate_at == START + timedelta(seconds=30)
    assert dispatched.liquidations == [
        {"account_id": account.pk, "trip_id": str(state.trip_id), "countdown": 10.0}
    ]
    scheduled = GuardAlert.objects.get(account=account, kind=AlertKind.LIQUIDATION_SCHEDULED)
    assert scheduled.detail["at"] == (START + timedelta(seconds=30)).isoformat()
    assert scheduled.value == D("22.0000")


def test_critical_latches_during_the_grace_period(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=7_900, at_seconds=10)
    _evaluate(account, equity=7_900, at_seconds=20)
    result = _evaluate(account, equity=9_900, at_seconds=25)  # recovered reading inside the grace period
    assert result.status == GuardStatus.TRIPPED
    assert _state(account).drawdown_level == Level.CRITICAL
    assert len(dispatched.liquidations) == 1  # scheduled once


def test_an_overdue_liquidation_is_dispatched_again_by_the_next_sync(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=7_900, at_seconds=10)
    _evaluate(account, equity=7_900, at_seconds=20)
    _evaluate(account, equity=7_900, at_seconds=30)  # exactly due: the task is running
    _evaluate(account, equity=7_900, at_seconds=40)  # 10 s late: lost task
    assert [d["countdown"] for d in dispatched.liquidations] == [10.0, 0.0]
    _evaluate(account, equity=7_900, at_seconds=50)  # still not started: not again before 30 s
    assert len(dispatched.liquidations) == 2
    _evaluate(account, equity=7_900, at_seconds=70)
    assert [d["countdown"] for d in dispatched.liquidations] == [10.0, 0.0, 0.0]


def test_confirm_readings_and_levels_come_from_the_account_override(account, no_daily_loss):
    guard_settings_update(
        actor=None, account=account, values={"confirm_readings": 1, "drawdown_warning_percent": "5"}
    )
    _evaluate(account, equity=10_000, at_seconds=0)
    assert _evaluate(account, equity=9_400, at_seconds=10).status == GuardStatus.WARNING


# ---------------------------------------------------------------- daily loss and the broker day


def test_daily_loss_anchor_is_the_first_snapshot_of_the_broker_day(account):
    guard_settings_update(
        actor=None, values={"drawdown_warning_percent": 50, "drawdown_critical_percent": 60}
    )
    # 21:50 UTC = 23:50 server (UTC+2): still Monday on the broker's clock
    late = 14 * 3600 + 50 * 60
    _evaluate(account, equity=10_200, balance=10_000, at_seconds=late)
    state = _state(account)
    assert state.day_anchor == D("10200")
    assert str(state.broker_day) == "2026-03-02"
    # 22:10 UTC = 00:10 server: a new broker day (UTC is still Monday)
    _evaluate(account, equity=9_600, balance=10_000, at_seconds=late + 20 * 60)
    state = _state(account)
    assert str(state.broker_day) == "2026-03-03"
    assert state.day_anchor == D("10000")
    assert state.daily_loss_percent == D("4.0000")


def test_daily_loss_levels_and_off_when_empty(account):
    guard_settings_update(
        actor=None, values={"drawdown_warning_percent": 50, "drawdown_critical_percent": 60}
    )
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=9_550, at_seconds=10)
    assert _evaluate(account, equity=9_550, at_seconds=20).status == GuardStatus.WARNING
    guard_settings_update(
        actor=None, values={"daily_loss_warning_percent": None, "daily_loss_critical_percent": None}
    )
    assert _evaluate(account, equity=9_000, at_seconds=30).status == GuardStatus.NORMAL
    assert _state(account).daily_loss_percent is None


def test_daily_loss_trips_like_drawdown(account, dispatched):
    guard_settings_update(
        actor=None, values={"drawdown_warning_percent": 50, "drawdown_critical_percent": 60}
    )
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=9_400, at_seconds=10)
    assert _evaluate(account, equity=9_400, at_seconds=20).status == GuardStatus.TRIPPED
    assert _state(account).trip_guard == "daily_loss"


# ---------------------------------------------------------------- stale, failed and repeated snapshots


def test_a_stale_snapshot_is_never_read_and_the_guard_says_it_waits(account, settings, no_daily_loss):
    settings.ACCOUNT_SNAPSHOT_STALE_SECONDS = 60
    _evaluate(account, equity=10_000, at_seconds=0)
    old = make_snapshot(account, equity=1, at=START + timedelta(seconds=5))
    now = START + timedelta(seconds=500)
    result = evaluate_reading(account=account, snapshot=old, positions=[], now=now)
    assert not result.fresh
    assert "stale" in result.waiting
    evaluate_reading(account=account, snapshot=None, positions=[], now=now)
    state = _state(account)
    assert state.drawdown_percent == D("0.0000")
    assert state.drawdown_warning_count == 0
    assert state.waiting_for_fresh is True
    assert list(GuardAlert.objects.filter(account=account).values_list("kind", flat=True)) == [
        AlertKind.SNAPSHOT_STALE
    ]  # said once per waiting spell
    _evaluate(account, equity=10_000, at_seconds=510)
    assert _state(account).waiting_for_fresh is False


def test_the_same_snapshot_counts_once(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    snapshot = make_snapshot(account, equity=8_800, at=START + timedelta(seconds=10))
    for _ in range(3):
        evaluate_reading(account=account, snapshot=snapshot, positions=[], now=snapshot.taken_at)
    state = _state(account)
    assert state.drawdown_warning_count == 1
    assert state.status == GuardStatus.NORMAL


# ---------------------------------------------------------------- deposits and withdrawals


def _operation(ticket, amount, *, type_=2, seconds=5, comment=""):
    return SimpleNamespace(
        ticket=ticket,
        type=type_,
        profit=D(str(amount)),
        time=START + timedelta(seconds=seconds),
        comment=comment,
    )


def test_a_deposit_moves_the_peak_and_is_audited(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=14_000, balance=15_000, at_seconds=10, deals=[_operation(501, 5000)])
    state = _state(account)
    assert state.peak_equity == D("15000")
    assert state.drawdown_percent == D("6.6667")
    alert = GuardAlert.objects.get(account=account, kind=AlertKind.BALANCE_ADJUSTED)
    assert (alert.detail["deal"], alert.detail["amount"]) == (501, "5000")
    assert alert.detail["peak"] == ["10000.00", "15000.00"]
    row = BalanceOperation.objects.get(account=account)
    assert (row.deal_ticket, row.amount, row.applied, row.peak_after) == (501, D("5000"), True, D("15000"))


def test_a_withdrawal_is_not_a_drawdown(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    withdrawal = [_operation(502, -5000)]
    _evaluate(account, equity=5_000, balance=5_000, at_seconds=10, deals=withdrawal)
    _evaluate(account, equity=5_000, balance=5_000, at_seconds=20, deals=withdrawal)
    state = _state(account)
    assert state.peak_equity == D("5000")
    assert state.status == GuardStatus.NORMAL
    assert dispatched.liquidations == []


def test_each_deal_applies_once_however_often_overlapping_windows_return_it(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    deposit = _operation(503, 1000)
    for seconds in (10, 20, 30):  # the balance does not change again: the deal is still in every window
        _evaluate(account, equity=11_000, balance=11_000, at_seconds=seconds, deals=[deposit])
    assert _state(account).peak_equity == D("11000")
    assert BalanceOperation.objects.filter(account=account).count() == 1
    assert GuardAlert.objects.filter(account=account, kind=AlertKind.BALANCE_ADJUSTED).count() == 1


def test_a_deal_stamped_before_the_previous_reading_still_applies(account, no_daily_loss):
    """Ticket, not time: a withdrawal whose deal time is before the previous reading (broker clock estimate,
    history lag) still moves the peak when it first appears."""
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=8_000, balance=8_000, at_seconds=10, deals=[_operation(504, -2000, seconds=-5)])
    assert _state(account).peak_equity == D("8000")
    assert _state(account).drawdown_percent == D("0.0000")


def test_credit_and_bonus_move_the_peak_charges_and_corrections_do_not(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    deals = [
        _operation(505, 500, type_=3),  # credit
        _operation(506, 200, type_=6),  # bonus
        _operation(507, -50, type_=4),  # charge: P/L
        _operation(508, -25, type_=5),  # correction: P/L
    ]
    _evaluate(account, equity=10_625, balance=10_125, at_seconds=10, deals=deals)
    assert _state(account).peak_equity == D("10700")
    assert sorted(BalanceOperation.objects.values_list("deal_ticket", flat=True)) == [505, 506]


def test_the_peak_never_goes_below_zero(account, no_daily_loss):
    _evaluate(account, equity=1_000, balance=1_000, at_seconds=0)
    _evaluate(account, equity=0, balance=0, at_seconds=10, deals=[_operation(509, -1500)])
    assert _state(account).peak_equity == D("0")


def test_operations_before_the_first_reading_are_remembered_but_not_applied(account, no_daily_loss):
    """The first reading's equity already holds them: the peak starts there."""
    _evaluate(account, equity=10_000, at_seconds=0, deals=[_operation(510, 10_000, seconds=-3600)])
    assert _state(account).peak_equity == D("10000")
    assert BalanceOperation.objects.get(account=account).applied is False
    _evaluate(account, equity=10_000, at_seconds=10, deals=[_operation(510, 10_000, seconds=-3600)])
    assert _state(account).peak_equity == D("10000")
    assert not GuardAlert.objects.filter(account=account, kind=AlertKind.BALANCE_ADJUSTED).exists()


def test_without_the_deal_history_a_changed_balance_is_not_judged(account, dispatched, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    for seconds in (10, 20):  # a withdrawal of 5 000, twice read without history: not a 50 % drawdown
        result = _evaluate(account, equity=5_000, balance=5_000, at_seconds=seconds, deals=None)
        assert not result.fresh
        assert "deal history" in result.waiting
    state = _state(account)
    assert (state.peak_equity, state.drawdown_critical_count, state.status) == (
        D("10000"),
        0,
        GuardStatus.NORMAL,
    )
    assert dispatched.liquidations == []
    # History back: the withdrawal is applied by its ticket and the reading judged.
    _evaluate(account, equity=5_000, balance=5_000, at_seconds=30, deals=[_operation(511, -5000, seconds=8)])
    assert (_state(account).peak_equity, _state(account).waiting_for_fresh) == (D("5000"), False)


def test_without_the_deal_history_a_changed_credit_is_not_judged(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    result = _evaluate(account, equity=11_000, credit=1_000, at_seconds=10, deals=None)
    assert not result.fresh


def test_without_the_deal_history_an_unchanged_balance_is_judged(account, no_daily_loss):
    _evaluate(account, equity=10_000, at_seconds=0)
    result = _evaluate(account, equity=9_000, at_seconds=10, deals=None)  # floating loss only
    assert result.fresh
    assert _state(account).drawdown_percent == D("10.0000")


# ---------------------------------------------------------------- halted accounts


def _halt(account):
    state, _ = GuardState.objects.get_or_create(account=account)
    state.status = GuardStatus.HALTED
    state.trip_id = "7b0f6f5e-2d5c-4b8e-9d55-2a7b1c0e9f01"
    state.trip_guard = "drawdown"
    state.save()
    return state


def test_a_position_that_appears_while_halted_is_reported_and_closed(account, dispatched):
    _halt(account)
    position = SimpleNamespace(ticket=777, symbol="EURUSD")
    _evaluate(account, equity=8_000, at_seconds=0, positions=[position])
    alert = GuardAlert.objects.get(account=account, kind=AlertKind.HALTED_POSITION)
    assert alert.ticket == 777
    assert dispatched.closes == [
        {
            "account_id": account.pk,
            "trigger": "halted",
            "trigger_key": "halt:7b0f6f5e-2d5c-4b8e-9d55-2a7b1c0e9f01",
            "tickets": [777],
        }
    ]


def test_halted_positions_are_only_reported_when_closing_is_off(account, dispatched):
    guard_settings_update(actor=None, values={"close_new_positions_when_halted": False})
    _halt(account)
    _evaluate(account, equity=8_000, at_seconds=0, positions=[SimpleNamespace(ticket=778, symbol="EURUSD")])
    assert GuardAlert.objects.get(account=account, kind=AlertKind.HALTED_POSITION).detail == {
        "closing": False
    }
    assert dispatched.closes == []


def test_halted_account_stays_halted_whatever_the_equity(account, dispatched, no_daily_loss):
    _halt(account)
    assert _evaluate(account, equity=50_000, at_seconds=0).status == GuardStatus.HALTED


def test_guard_alerts_are_pushed_live_after_commit(
    account, django_capture_on_commit_callbacks, no_daily_loss
):
    from unittest import mock

    from core.realtime import realtime_flush

    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=8_800, at_seconds=10)
    with mock.patch("core.realtime.get_channel_layer") as layer:
        sent = []

        async def group_send(group, message):
            sent.append((group, message))

        layer.return_value.group_send = group_send
        with django_capture_on_commit_callbacks(execute=True):
            _evaluate(account, equity=8_800, at_seconds=20)
        realtime_flush()  # the sender thread delivers asynchronously
    alert = GuardAlert.objects.get(account=account, kind=AlertKind.GUARD_LEVEL)
    groups = {group for group, _ in sent}
    assert groups == {f"accounts.account.{account.pk}", "accounts.staff"}
    assert all(message["alert_id"] == alert.pk for _, message in sent)
