"""A guard trip, end to end: the right messages to the right people and none to anyone else, rows written with
the alerts (same transaction), delivered over the fake Telegram API, locmem e-mail and a verified webhook."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction

from guards.models import GuardAlert, GuardState, GuardStatus
from guards.services import account_liquidate, guard_settings_update
from guards.tests.conftest import START, evaluate_reading, make_snapshot
from notifications.models import DeliveryState, EventKind, Notification
from notifications.services import notification_deliver, notification_preference_update
from notifications.tests.conftest import chat_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_daily_loss():
    guard_settings_update(
        actor=None, values={"daily_loss_warning_percent": None, "daily_loss_critical_percent": None}
    )


def _evaluate(account, *, equity, at_seconds, positions=()):
    at = START + timedelta(seconds=at_seconds)
    snapshot = make_snapshot(account, equity=equity, at=at)
    return evaluate_reading(account=account, snapshot=snapshot, positions=list(positions), now=at)


def _trip(account):
    _evaluate(account, equity=10_000, at_seconds=0)
    _evaluate(account, equity=7_500, at_seconds=10)
    _evaluate(account, equity=7_500, at_seconds=20)  # 25 % twice: critical, liquidation scheduled


def _destinations(kind) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("destination", flat=True))


def _deliver_all(now=None):
    return [
        notification_deliver(notification_id=pk, now=now).outcome
        for pk in Notification.objects.values_list("pk", flat=True)
    ]


def test_a_trip_notifies_the_trader_and_the_operators_and_nobody_else(
    account, people, dispatched, no_daily_loss, telegram, receiver
):
    trader, other, owner, support = (people[k] for k in ("trader", "other_trader", "owner", "support"))
    notification_preference_update(user=support, channel="email", enabled=True, min_severity="critical")
    notification_preference_update(user=support, channel="telegram", enabled=False, min_severity="info")
    notification_preference_update(user=owner, channel="telegram", enabled=True, min_severity="critical")

    _trip(account)

    assert GuardState.objects.get(account=account).status == GuardStatus.TRIPPED
    scheduled = _destinations(EventKind.LIQUIDATION_SCHEDULED)
    assert scheduled == {
        f"telegram:{chat_of(trader)}",
        f"email:{trader.email}",
        f"telegram:{chat_of(owner)}",
        f"email:{owner.email}",
        f"email:{support.email}",
        f"webhook:{receiver.endpoint.pk}",
    }
    # the critical level and the schedule are one message (with the liquidation time), not two
    assert not Notification.objects.filter(kind=EventKind.GUARD_CRITICAL).exists()
    # the other trader hears nothing; support's telegram is off
    everything = set(Notification.objects.values_list("destination", flat=True))
    assert (
        not {f"telegram:{chat_of(other)}", f"email:{other.email}", f"telegram:{chat_of(support)}"}
        & everything
    )

    assert set(_deliver_all()) == {"sent"}
    assert Notification.objects.exclude(state=DeliveryState.SENT).count() == 0

    [to_trader] = telegram.messages_to(chat_of(trader))
    assert "Guard critical: liquidation scheduled" in to_trader
    assert f"{account.login}@{account.server}" in to_trader
    assert "25.00%" in to_trader
    assert "Every position will be closed at 2026-03-02 07:00:30 UTC" in to_trader
    assert f"https://guard.example.test/accounts/{account.pk}/" in to_trader
    assert telegram.messages_to(chat_of(other)) == []
    assert sorted(m.to[0] for m in mail.outbox) == sorted([trader.email, owner.email, support.email])
    assert [r["body"]["event"] for r in receiver.received] == ["liquidation_scheduled"]
    assert receiver.rejected == 0


def test_liquidation_started_and_finished_reach_the_trader(
    account, people, sim, gateway, clock, dispatched, telegram
):
    trader = people["trader"]
    tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0") for _ in range(2)]
    state = GuardState.objects.create(
        account=account,
        status=GuardStatus.TRIPPED,
        trip_id="5e2a6f0c-8d0e-4f31-9a41-1f7f8a4b9c10",
        trip_guard="drawdown",
        peak_equity=20_000,
        day_anchor=20_000,
        drawdown_level="critical",
    )
    result = account_liquidate(account=account, trip_id=str(state.trip_id), gateway=gateway)
    assert result.outcome == "closed"

    kinds = list(
        Notification.objects.filter(destination=f"telegram:{chat_of(trader)}").values_list("kind", flat=True)
    )
    assert sorted(kinds) == ["liquidation_finished", "liquidation_started"]
    finished = Notification.objects.get(
        kind=EventKind.LIQUIDATION_FINISHED, destination=f"email:{trader.email}"
    )
    assert finished.payload["closed"] == sorted(tickets)
    assert finished.payload["failed"] == []
    _deliver_all()
    texts = telegram.messages_to(chat_of(trader))
    assert any("Closing 2 position(s)" in t for t in texts)
    assert any("Closed: 2 position(s)" in t for t in texts)


def test_notifications_are_written_in_the_alerts_transaction(account, people, dispatched, no_daily_loss):
    seen = []

    def trip_then_fail():
        with transaction.atomic():
            _trip(account)
            seen.append(Notification.objects.count())
            raise RuntimeError("the guard's transaction fails after the alerts")

    with pytest.raises(RuntimeError):
        trip_then_fail()
    assert seen[0] > 0
    assert not GuardAlert.objects.exists()
    assert not Notification.objects.exists()


def test_an_event_recorded_twice_notifies_once(account, people, dispatched, no_daily_loss):
    from notifications.services import notifications_for_alerts

    _trip(account)
    count = Notification.objects.count()
    notifications_for_alerts(alerts=list(GuardAlert.objects.all()))
    assert Notification.objects.count() == count


def test_a_fault_while_building_notifications_never_undoes_the_guard(
    account, people, dispatched, no_daily_loss, monkeypatch
):
    import notifications.services.outbox as outbox

    def broken(events):
        raise ValueError("bug")

    monkeypatch.setattr(outbox, "destinations_for_events", broken)
    _trip(account)
    assert GuardState.objects.get(account=account).status == GuardStatus.TRIPPED
    assert GuardAlert.objects.filter(kind="liquidation_scheduled").exists()
    assert not Notification.objects.exists()


def test_the_trader_sees_times_in_their_time_zone(account, people, dispatched, no_daily_loss, telegram):
    trader = people["trader"]
    trader.time_zone = "Europe/Berlin"
    trader.save(update_fields=["time_zone"])
    _trip(account)
    n = Notification.objects.get(
        kind=EventKind.LIQUIDATION_SCHEDULED, destination=f"telegram:{chat_of(trader)}"
    )
    assert notification_deliver(notification_id=n.pk).outcome == "sent"
    [text] = telegram.messages_to(chat_of(trader))
    assert "closed at 2026-03-02 08:00:30 CET (Europe/Berlin)" in text
