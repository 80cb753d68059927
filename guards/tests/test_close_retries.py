"""Failed closes on a halted account are retried (5 s, 10 s, 20 s, 40 s, then every 60 s) while the position is
open and the account halted; each attempt its own intent; the schedule is in the database; a reset needs the
operator to confirm what stays open. (shared/spec/guards.md "A failed close is retried ...")"""

import uuid
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from guards.models import (
    AlertKind,
    CloseIntent,
    CloseTrigger,
    GuardAlert,
    GuardState,
    GuardStatus,
    IntentState,
    Level,
)
from guards.services import (
    account_liquidate,
    close_intent_follow_up,
    close_intents_complete,
    guard_reset,
    positions_close_all,
)
from guards.services.reset import OpenPositionsNotConfirmedError
from guards.services.retries import halt_trigger_key, retry_delay_seconds
from guards.tests.conftest import evaluate_reading, make_snapshot
from integrations.mt5 import constants as mt5c

pytestmark = pytest.mark.django_db

MARKET_CLOSED = mt5c.TRADE_RETCODE_MARKET_CLOSED


def _halted(account, **fields):
    """A liquidation about to start: tripped, grace over, still critical at the re-check."""
    return GuardState.objects.create(
        account=account,
        status=GuardStatus.TRIPPED,
        trip_id=uuid.uuid4(),
        trip_guard="drawdown",
        peak_equity=Decimal("20000"),
        day_anchor=Decimal("20000"),
        drawdown_level=Level.CRITICAL,
        **fields,
    )


def _liquidate_with_market_closed(account, sim, gateway):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = _halted(account)
    sim.sim_set_market_open("EURUSD", False)
    result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    return ticket, state, result


def _chain(ticket):
    return list(CloseIntent.objects.filter(ticket=ticket).order_by("attempt"))


def test_schedule_is_5_10_20_40_then_every_60_seconds():
    assert [retry_delay_seconds(n) for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]


def test_a_close_failed_with_market_closed_is_retried_on_schedule_until_the_market_opens(
    account, sim, terminal, gateway, clock, dispatched
):
    ticket, state, result = _liquidate_with_market_closed(account, sim, gateway)
    assert result.outcome == "closed"  # every intent final; the retries carry on on their own
    first = CloseIntent.objects.get(ticket=ticket)
    assert (first.state, first.last_retcode, first.attempt) == (IntentState.FAILED, MARKET_CLOSED, 1)
    assert first.retry_at == clock.now() + timedelta(seconds=5)
    assert dispatched.retries == [{"account_id": account.pk, "intent_id": first.pk, "countdown": 5}]

    # Not due yet: nothing happens (a task that comes early, the recovery running now).
    assert close_intent_follow_up(intent=first, gateway=gateway) is None
    gaps = []
    for _ in range(5):
        latest = _chain(ticket)[-1]
        gaps.append((latest.retry_at - clock.now()).total_seconds())
        clock.advance((latest.retry_at - clock.now()).total_seconds())
        close_intent_follow_up(intent=latest, gateway=gateway)
    assert gaps == [5, 10, 20, 40, 60]
    chain = _chain(ticket)
    assert [i.attempt for i in chain] == [1, 2, 3, 4, 5, 6]
    assert all(i.state == IntentState.FAILED and i.last_retcode == MARKET_CLOSED for i in chain)
    assert [i.retry_of_id for i in chain] == [None, *[i.pk for i in chain[:-1]]]
    assert chain[1].idempotency_key == f"{halt_trigger_key(state.trip_id)}:{ticket}:attempt-2"
    assert {i.trigger_key for i in chain} == {halt_trigger_key(state.trip_id)}
    # every failure is a live alert with its retcode
    failures = GuardAlert.objects.filter(kind=AlertKind.CLOSE_FAILED, ticket=ticket).order_by("pk")
    assert [(a.detail["attempt"], a.detail["retcode"]) for a in failures] == [
        (n, MARKET_CLOSED) for n in range(1, 7)
    ]

    sim.sim_set_market_open("EURUSD", True)
    clock.advance(60)
    close_intent_follow_up(intent=chain[-1], gateway=gateway)
    last = _chain(ticket)[-1]
    assert (last.attempt, last.state, last.outcome["evidence"]) == (7, IntentState.CONFIRMED, "done")
    assert sim.sim_find_positions() == []
    assert terminal.order_sends[ticket] == 7  # one order per attempt
    state.refresh_from_db()
    assert state.status == GuardStatus.HALTED  # closing everything does not un-halt: a reset does


def test_each_failed_attempt_is_retried_exactly_once(account, sim, gateway, clock, dispatched):
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    clock.advance(5)
    close_intent_follow_up(intent=first, gateway=gateway)
    # a duplicate task, the recovery and the sync all come for the same failed attempt: nothing more happens
    assert close_intent_follow_up(intent=first, gateway=gateway) is None
    close_intents_complete(gateway_for=lambda account: gateway)
    assert [i.attempt for i in _chain(ticket)] == [1, 2]


def test_no_attempt_while_another_close_of_the_position_is_unresolved(
    account, sim, gateway, clock, dispatched
):
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    other = CloseIntent.objects.create(
        idempotency_key=f"op:{ticket}", account=account, ticket=ticket, trigger=CloseTrigger.OPERATOR,
        trigger_key="op", state=IntentState.UNRESOLVED,
    )  # fmt: skip
    clock.advance(5)
    assert close_intent_follow_up(intent=first, gateway=gateway) is None
    first.refresh_from_db()
    assert first.retry_at is not None  # still due: the next driver tries again
    other.state = IntentState.FAILED
    other.save()
    assert close_intent_follow_up(intent=first, gateway=gateway).attempt == 2


def test_a_lost_retry_task_is_made_up_by_the_recovery_when_due(account, sim, gateway, clock, dispatched):
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    close_intents_complete(gateway_for=lambda account: gateway)  # not due yet
    assert len(_chain(ticket)) == 1
    clock.advance(5)
    sim.sim_set_market_open("EURUSD", True)
    close_intents_complete(gateway_for=lambda account: gateway)  # the queued task was lost (restart)
    chain = _chain(ticket)
    assert [(i.attempt, i.state) for i in chain] == [(1, IntentState.FAILED), (2, IntentState.CONFIRMED)]


def test_the_halted_sync_re_closes_a_position_whose_close_failed(account, sim, gateway, clock, dispatched):
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    positions = gateway.positions()
    make_snapshot(account, equity=9_000, at=clock.now())
    evaluate_reading(account=account, snapshot=account.latest_snapshot, positions=positions, now=clock.now())
    assert dispatched.retries == [
        {"account_id": account.pk, "intent_id": first.pk, "countdown": 5}
    ]  # not due
    clock.advance(10)
    make_snapshot(account, equity=9_000, at=clock.now())
    evaluate_reading(account=account, snapshot=account.latest_snapshot, positions=positions, now=clock.now())
    assert dispatched.retries[-1] == {"account_id": account.pk, "intent_id": first.pk, "countdown": 0.0}
    assert not GuardAlert.objects.filter(kind=AlertKind.HALTED_POSITION).exists()  # it is not a new position


def test_a_failed_close_is_not_retried_once_the_account_is_reset(
    account, sim, gateway, clock, dispatched, support
):
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    guard_reset(
        account=account, actor=support, reason="market closed, handled by phone", confirm_open_positions=True
    )
    clock.advance(5)
    assert close_intent_follow_up(intent=first, gateway=gateway) is None
    first.refresh_from_db()
    assert first.retry_at is None
    assert sim.sim_find_positions() == [ticket]


def test_reset_with_positions_left_open_needs_a_confirmation_that_is_recorded(
    account, sim, gateway, clock, dispatched, support
):
    ticket, state, _ = _liquidate_with_market_closed(account, sim, gateway)
    with pytest.raises(OpenPositionsNotConfirmedError) as refused:
        guard_reset(account=account, actor=support, reason="weekend")
    assert refused.value.extra["open_tickets"] == [ticket]
    assert str(ticket) in refused.value.message
    state.refresh_from_db()
    assert state.status == GuardStatus.HALTED  # nothing half-done
    guard_reset(account=account, actor=support, reason="weekend", confirm_open_positions=True)
    reset = GuardAlert.objects.get(kind=AlertKind.RESET)
    assert reset.detail["left_open"] == [ticket]
    assert reset.detail["confirmed_open_positions"] is True
    assert f"#{ticket}" in reset.message


def test_reset_after_every_close_succeeded_needs_no_confirmation(
    account, sim, gateway, clock, dispatched, support
):
    sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = _halted(account)
    account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    guard_reset(account=account, actor=support, reason="back to normal")
    assert GuardAlert.objects.get(kind=AlertKind.RESET).detail["left_open"] == []


def test_algo_trading_switched_off_in_the_grace_period_does_not_escape(
    account, sim, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = _halted(account)
    sim.sim_set_trade_allowed(False)  # the trader's Algo Trading button
    account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    assert (first.state, first.last_retcode) == (IntentState.FAILED, mt5c.TRADE_RETCODE_CLIENT_DISABLES_AT)
    clock.advance(5)
    close_intent_follow_up(intent=first, gateway=gateway)
    sim.sim_set_trade_allowed(True)
    clock.advance(10)
    close_intent_follow_up(intent=_chain(ticket)[-1], gateway=gateway)
    assert [i.state for i in _chain(ticket)] == [
        IntentState.FAILED,
        IntentState.FAILED,
        IntentState.CONFIRMED,
    ]
    assert sim.sim_find_positions() == []


def test_an_operator_close_that_fails_is_not_retried(account, sim, gateway, clock, dispatched):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    sim.sim_set_market_open("EURUSD", False)
    positions_close_all(account=account, trigger_key="op-1", gateway=gateway, tickets=[ticket])
    intent = CloseIntent.objects.get(ticket=ticket)
    assert intent.state == IntentState.FAILED
    assert intent.retry_at is None
    assert dispatched.retries == []


def test_bulk_close_lets_the_soft_time_limit_through(account, sim, gateway, clock):
    tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0") for _ in range(2)]
    with (
        mock.patch("guards.services.autoclose._drive_locked", side_effect=SoftTimeLimitExceeded()),
        pytest.raises(SoftTimeLimitExceeded),
    ):
        positions_close_all(account=account, trigger_key="op-1", gateway=gateway, tickets=tickets)
    # a plain error is still isolated per position
    with mock.patch("guards.services.autoclose._drive_locked", side_effect=RuntimeError("boom")):
        outcomes = positions_close_all(account=account, trigger_key="op-2", gateway=gateway, tickets=tickets)
    assert [o.error for o in outcomes] == ["boom", "boom"]


def test_the_recovery_lets_the_soft_time_limit_through(account, sim, gateway, clock):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    CloseIntent.objects.create(
        idempotency_key=f"op:{ticket}",
        account=account,
        ticket=ticket,
        trigger=CloseTrigger.OPERATOR,
        trigger_key="op",
    )
    with (
        mock.patch("guards.services.autoclose._drive_locked", side_effect=SoftTimeLimitExceeded()),
        pytest.raises(SoftTimeLimitExceeded),
    ):
        close_intents_complete(gateway_for=lambda account: gateway)


def test_the_celery_dispatcher_queues_the_retry_after_commit_with_its_countdown(
    django_capture_on_commit_callbacks,
):
    from guards.services.dispatch import CeleryDispatcher

    with mock.patch("guards.tasks.close_intent_retry_task.apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            CeleryDispatcher().close_retry(account_id=7, intent_id=42, countdown=20)
        apply_async.assert_not_called()
        for callback in callbacks:
            callback()
    apply_async.assert_called_once_with(args=[42], countdown=20)


def test_the_retry_task_makes_the_due_attempt(account, sim, gateway, clock, dispatched):
    from guards import tasks

    assert tasks.close_intent_retry_task.acks_late is True
    assert tasks.close_intent_retry_task.reject_on_worker_lost is True
    ticket, _state, _ = _liquidate_with_market_closed(account, sim, gateway)
    first = CloseIntent.objects.get(ticket=ticket)
    with mock.patch("guards.tasks._gateway_for", return_value=gateway):
        assert tasks.close_intent_retry_task(first.pk) == "nothing due"
        clock.advance(5)
        sim.sim_set_market_open("EURUSD", True)
        assert tasks.close_intent_retry_task(first.pk) == IntentState.CONFIRMED
        assert tasks.close_intent_retry_task(10**9) == "gone"
