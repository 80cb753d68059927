"""A close is confirmed only on evidence: DONE / POSITION_CLOSED, or absence on a CONNECTED terminal backed by the
position's closing deal or by a second read one sync later. Absence on a disconnected terminal proves nothing."""

import uuid
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.test import override_settings

from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState, GuardStatus, IntentState, Level
from guards.services import account_liquidate, close_intent_follow_up, close_intents_complete, position_close
from integrations.mt5 import constants as mt5c

pytestmark = pytest.mark.django_db


def _close(account, gateway, ticket):
    return position_close(account=account, ticket=ticket, trigger_key="op-1", gateway=gateway)


def _disconnected(sim, gateway):
    """What a terminal cut off from its trade server does: connected false, positions_get answers ()."""
    sim.sim_set_connected(False)
    return mock.patch.object(gateway, "positions", return_value=())


def test_absence_on_a_disconnected_terminal_proves_nothing(
    account, sim, terminal, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    with _disconnected(sim, gateway):
        intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.PENDING  # not confirmed, nothing sent
    assert "not connected" in intent.last_error
    assert terminal.order_sends[ticket] == 0
    assert dispatched.retries == [{"account_id": account.pk, "intent_id": intent.pk, "countdown": 10.0}]
    sim.sim_set_connected(True)
    clock.advance(10)
    intent = close_intent_follow_up(intent=intent, gateway=gateway)
    assert intent.state == IntentState.CONFIRMED
    assert intent.outcome["evidence"] == "done"
    assert sim.sim_find_positions() == []


def test_absence_backed_by_the_closing_deal_confirms_at_once(account, sim, terminal, gateway, clock):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0", sl="1.08000")
    sim.sim_set_price("EURUSD", "1.07900", "1.07910")  # the stop loss fires: a closing deal (entry OUT)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.outcome["evidence"] == "closing_deal"
    assert intent.outcome["closed_by"] == "stop_loss"
    assert terminal.order_sends[ticket] == 0


@override_settings(RECONCILIATION_SYNC_INTERVAL_SECONDS=10)
def test_absence_without_a_closing_deal_needs_a_second_read_one_sync_later(
    account, sim, terminal, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    with (
        mock.patch.object(gateway, "positions", return_value=()),
        mock.patch.object(gateway, "deals_for_position", return_value=()),
    ):
        intent = _close(account, gateway, ticket)
        assert intent.state == IntentState.PENDING
        assert intent.absent_since == clock.now()
        clock.advance(5)  # too early: not yet one sync later
        assert close_intent_follow_up(intent=intent, gateway=gateway).state == IntentState.PENDING
        clock.advance(5)
        intent = close_intent_follow_up(intent=intent, gateway=gateway)
    assert intent.state == IntentState.CONFIRMED
    assert intent.outcome["evidence"] == "second_read"
    assert terminal.order_sends[ticket] == 0


def test_a_position_seen_again_after_an_empty_read_is_closed(
    account, sim, terminal, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    with (
        mock.patch.object(gateway, "positions", return_value=()),
        mock.patch.object(gateway, "deals_for_position", return_value=()),
    ):
        intent = _close(account, gateway, ticket)
    clock.advance(10)
    intent = close_intent_follow_up(intent=intent, gateway=gateway)
    assert intent.state == IntentState.CONFIRMED
    assert intent.outcome["evidence"] == "done"
    assert intent.absent_since is None


def test_connection_lost_mid_close_stays_unresolved_and_sends_nothing_more(
    account, sim, terminal, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_CONNECTION)
    terminal.before("order_send", lambda: sim.sim_set_connected(False))
    with mock.patch.object(gateway, "positions", side_effect=[gateway.positions(ticket=ticket), (), (), ()]):
        intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.UNRESOLVED
    assert terminal.order_sends[ticket] == 1
    assert not GuardAlert.objects.filter(kind=AlertKind.CLOSE_CONFIRMED).exists()
    sim.sim_set_connected(True)
    clock.advance(10)
    intent = close_intent_follow_up(intent=intent, gateway=gateway)
    assert intent.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 2
    assert sim.sim_find_positions() == []


def test_the_liquidation_re_check_on_a_disconnected_terminal_waits(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = GuardState.objects.create(
        account=account, status=GuardStatus.TRIPPED, trip_id=uuid.uuid4(), trip_guard="drawdown",
        peak_equity=Decimal("20000"), day_anchor=Decimal("20000"), drawdown_level=Level.CRITICAL,
        liquidate_at=clock.now() - timedelta(seconds=1),
    )  # fmt: skip
    with _disconnected(sim, gateway):
        result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    assert result.outcome == "retry"
    state.refresh_from_db()
    assert state.status == GuardStatus.TRIPPED  # not halted on an empty, unconnected reading
    assert not CloseIntent.objects.exists()


def test_an_open_intent_has_one_follow_up_however_many_drivers_come_by(
    account, sim, gateway, clock, dispatched
):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    with _disconnected(sim, gateway):
        intent = _close(account, gateway, ticket)
        for _ in range(3):  # the recovery, a duplicate task, ... before the scheduled read is due
            clock.advance(2)
            close_intents_complete(gateway_for=lambda account: gateway)
        assert len(dispatched.retries) == 1
        clock.advance(4)  # the scheduled read: still disconnected, the next one is queued
        close_intent_follow_up(intent=intent, gateway=gateway)
        assert len(dispatched.retries) == 2
    assert CloseIntent.objects.get(pk=intent.pk).state == IntentState.PENDING
