"""A liquidation whose close fails with the market closed: the trader hears of the failure once (with the retcode
and the next attempt), not at every retry, and of the finished liquidation once the market opens and it closes."""

import uuid
from decimal import Decimal

import pytest

from guards.models import CloseIntent, GuardState, GuardStatus, Level
from guards.services import account_liquidate, close_intent_follow_up
from notifications.models import EventKind, Notification
from notifications.services import notification_deliver
from notifications.tests.conftest import chat_of

pytestmark = pytest.mark.django_db


def test_market_closed_at_liquidation(account, people, sim, gateway, clock, dispatched, telegram):
    trader = people["trader"]
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    state = GuardState.objects.create(
        account=account, status=GuardStatus.TRIPPED, trip_id=uuid.uuid4(), trip_guard="drawdown",
        peak_equity=Decimal("20000"), day_anchor=Decimal("20000"), drawdown_level=Level.CRITICAL,
    )  # fmt: skip
    sim.sim_set_market_open("EURUSD", False)
    account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    for _ in range(4):  # four more failed attempts (5, 10, 20, 40 s later)
        latest = CloseIntent.objects.filter(ticket=ticket).order_by("attempt").last()
        clock.advance((latest.retry_at - clock.now()).total_seconds())
        close_intent_follow_up(intent=latest, gateway=gateway)
    mine = Notification.objects.filter(destination=f"telegram:{chat_of(trader)}")
    assert sorted(mine.values_list("kind", flat=True)) == ["close_failed", "liquidation_started"]

    failed = mine.get(kind=EventKind.CLOSE_FAILED)
    assert notification_deliver(notification_id=failed.pk).outcome == "sent"
    [text] = telegram.messages_to(chat_of(trader))
    assert "retcode 10018 (TRADE_RETCODE_MARKET_CLOSED)" in text
    assert "Attempt 1; the next at 2026-03-02 07:00:05 UTC (UTC)." in text

    sim.sim_set_market_open("EURUSD", True)
    latest = CloseIntent.objects.filter(ticket=ticket).order_by("attempt").last()
    clock.advance((latest.retry_at - clock.now()).total_seconds())
    close_intent_follow_up(intent=latest, gateway=gateway)
    finished = mine.get(kind=EventKind.LIQUIDATION_FINISHED)
    assert finished.payload == {
        "closed": [ticket], "failed": [], "trigger_key": latest.trigger_key, "guard": "drawdown",
    }  # fmt: skip
