"""The liquidation service and its wiring: re-check, cancel, stale episodes, a failed re-check, the Celery dispatch."""

import uuid
from decimal import Decimal
from unittest import mock

import pytest

from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState, GuardStatus, Level
from guards.services import account_liquidate
from guards.services.dispatch import CeleryDispatcher
from integrations.mt5.errors import GatewayUnavailable

pytestmark = pytest.mark.django_db


def _trip(account, **fields):
    values = {
        "status": GuardStatus.TRIPPED,
        "trip_id": uuid.uuid4(),
        "trip_guard": "drawdown",
        "peak_equity": Decimal("10000"),
        "day_anchor": Decimal("10000"),
        "drawdown_level": Level.CRITICAL,
        **fields,
    }
    return GuardState.objects.create(account=account, **values)


def test_still_critical_after_the_grace_period_closes_everything_and_halts(account, sim, gateway, clock):
    tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0") for _ in range(2)]
    sim.sim_set_price("EURUSD", "1.07400", "1.07410")
    state = _trip(account)
    result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    assert result.outcome == "closed"
    assert sorted(c.ticket for c in result.closes) == sorted(tickets)
    state.refresh_from_db()
    assert state.status == GuardStatus.HALTED
    assert state.halted_at is not None
    started = GuardAlert.objects.get(kind=AlertKind.LIQUIDATION_STARTED)
    assert started.detail["tickets"] == tickets
    assert sim.sim_find_positions() == []
    # a second run of the same episode (a re-delivered task) sends nothing more
    assert account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway).outcome == "closed"
    assert set(CloseIntent.objects.values_list("order_sends", flat=True)) == {1}


def test_a_withdrawal_during_the_grace_period_is_never_read_as_the_loss_that_confirms(
    account, sim, gateway, clock
):
    """The balance moved since the last evaluated reading: the re-check waits for the sync that applies the
    operation to the peak (by its deal ticket) instead of liquidating on it."""
    ticket = sim.sim_open_manual("EURUSD", "buy", "0.1")
    state = _trip(account, last_balance=Decimal("10000.00"), last_credit=Decimal("0.00"))
    sim.sim_balance_operation("balance", "-5000", "withdrawal")
    result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    assert result.outcome == "retry"
    state.refresh_from_db()
    assert state.status == GuardStatus.TRIPPED
    assert sim.sim_find_positions() == [ticket]


def test_a_re_check_on_a_disconnected_terminal_is_a_failed_one(account, sim, gateway, clock):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    sim.sim_set_price("EURUSD", "1.07400", "1.07410")
    sim.sim_set_connected(False)  # no positions, old values: neither "recovered" nor "nothing to close"
    state = _trip(account)
    assert account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway).outcome == "retry"
    state.refresh_from_db()
    assert state.status == GuardStatus.TRIPPED
    assert not CloseIntent.objects.exists()
    assert sim.sim_find_positions() == [ticket]


def test_recovered_at_the_re_check_cancels_and_releases_the_latch(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "1.0")
    sim.sim_set_price("EURUSD", "1.07400", "1.07410")  # about 11 %: below critical, above warning
    state = _trip(account, day_anchor=None)  # (from the day's anchor, 11 % would be a critical daily loss)
    assert (
        account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway).outcome == "cancelled"
    )
    state.refresh_from_db()
    assert state.status == GuardStatus.WARNING
    assert state.drawdown_level == Level.WARNING
    assert state.trip_id is None
    assert list(GuardAlert.objects.order_by("pk").values_list("kind", "level")) == [
        (AlertKind.GUARD_LEVEL, Level.WARNING),
        (AlertKind.LIQUIDATION_CANCELLED, ""),
    ]
    assert sim.sim_find_positions() != []


def test_a_failed_re_check_is_never_read_as_recovered(account, sim, gateway, clock, monkeypatch):
    sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = _trip(account)

    def down():
        raise GatewayUnavailable("no link", call="account_info")

    monkeypatch.setattr(gateway, "account", down)
    result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    assert result.outcome == "retry"
    state.refresh_from_db()
    assert state.status == GuardStatus.TRIPPED
    assert state.liquidation_started_at is None
    assert not GuardAlert.objects.exists()


def test_an_old_episode_does_nothing(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "1.0")
    _trip(account)
    assert account_liquidate(account=account, trip_id=str(uuid.uuid4()), gateway=gateway).outcome == "stale"
    assert sim.sim_find_positions() != []


def test_the_celery_dispatcher_queues_after_commit_with_the_grace_countdown(
    django_capture_on_commit_callbacks,
):
    with mock.patch("guards.tasks.account_liquidate_task.apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            CeleryDispatcher().liquidation(account_id=7, trip_id="t-1", countdown=10.0)
        apply_async.assert_not_called()
        for callback in callbacks:
            callback()
    apply_async.assert_called_once_with(args=[7, "t-1"], countdown=10.0)


def test_liquidation_task_options_give_late_acknowledgement():
    from guards import tasks

    assert tasks.account_liquidate_task.acks_late is True
    assert tasks.account_liquidate_task.reject_on_worker_lost is True
    assert tasks.account_positions_close_task.acks_late is True
