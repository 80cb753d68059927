"""Delivery: outage then recovery delivers each message exactly once, back-off, dead letters, permanent errors,
concurrent workers, Telegram's rate limits shared through Redis, the periodic sweep."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from notifications.events import Audience, Event
from notifications.models import DeliveryAttempt, DeliveryState, EventKind, Notification, Severity
from notifications.ratelimit import rate_slot_acquire, redis_key
from notifications.services import (
    notification_deliver,
    notification_events_record,
    notification_retry,
    notifications_release_expired,
)
from notifications.services.delivery import retry_delay
from notifications.tests.conftest import chat_of

pytestmark = pytest.mark.django_db


def _risk_event(n: int) -> Event:
    return Event(
        key=f"risk:{n}",
        kind=EventKind.RISK_CONFIG_CHANGED,
        severity=Severity.WARNING,
        occurred_at=timezone.now(),
        audience=Audience.OPERATORS,
        payload={
            "version": n,
            "previous_version": n - 1,
            "changed_by": "owner",
            "reason": "test",
            "changes": {},
        },
    )


def _telegram_rows():
    return list(Notification.objects.filter(channel="telegram").order_by("pk"))


def test_a_telegram_outage_then_recovery_delivers_each_message_exactly_once(people, telegram, settings):
    settings.TELEGRAM_RATE_PER_CHAT_PER_SECOND = 100  # this test is about the outage, not the pacing
    owner, support = people["owner"], people["support"]
    notification_events_record(events=[_risk_event(n) for n in (2, 3, 4)])
    rows = _telegram_rows()
    assert len(rows) == 6  # three events x (owner, support)

    telegram.stop()  # outage: connection refused
    assert {notification_deliver(notification_id=n.pk).outcome for n in rows} == {"retry"}
    telegram.fail_with = 502
    telegram.start()  # up, but failing
    later = timezone.now() + timedelta(hours=1)
    assert {notification_deliver(notification_id=n.pk, now=later).outcome for n in rows} == {"retry"}
    assert telegram.sent == []
    for n in rows:
        n.refresh_from_db()
        assert n.state == DeliveryState.RETRYING
        assert n.attempts == 2
        assert "502" in n.last_error

    telegram.fail_with = None  # recovered
    much_later = timezone.now() + timedelta(days=1)
    outcomes = [notification_deliver(notification_id=n.pk, now=much_later).outcome for n in rows]
    # the sweep and a re-delivered task ask again: nothing is sent twice
    outcomes += [notification_deliver(notification_id=n.pk, now=much_later).outcome for n in rows]
    assert outcomes == ["sent"] * 6 + ["not_due"] * 6
    assert len(telegram.messages_to(chat_of(owner))) == 3
    assert len(telegram.messages_to(chat_of(support))) == 3
    assert sorted(t.splitlines()[2] for t in telegram.messages_to(chat_of(owner))) == [
        f"Version {v} by owner: test" for v in (2, 3, 4)
    ]
    assert DeliveryAttempt.objects.filter(ok=True).count() == 6
    assert DeliveryAttempt.objects.filter(ok=False).count() == 12


def test_a_retry_waits_for_its_back_off(people, telegram):
    notification_events_record(events=[_risk_event(2)])
    n = _telegram_rows()[0]
    telegram.fail_with = 502
    result = notification_deliver(notification_id=n.pk)
    assert result.outcome == "retry"
    assert result.retry_in is not None
    assert result.retry_in >= 5
    telegram.fail_with = None
    assert notification_deliver(notification_id=n.pk).outcome == "not_due"
    assert telegram.sent == []


def test_back_off_grows_and_is_capped(settings):
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.NOTIFY_RETRY_CAP_SECONDS = 100
    assert 5 <= retry_delay(1) <= 10
    assert 10 <= retry_delay(2) <= 20
    assert 50 <= retry_delay(10) <= 100


def test_after_the_last_try_a_notification_is_a_dead_letter(people, receiver, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    receiver.fail_with = 500
    notification_events_record(
        events=[
            Event(
                key="alert:x",
                kind=EventKind.CLOSE_FAILED,
                severity=Severity.CRITICAL,
                occurred_at=timezone.now(),
                audience=Audience.OPERATORS,
                payload={"detail": {"retcode": 10018}},
            )
        ]
    )
    hook = Notification.objects.get(channel="webhook")
    outcomes = []
    for day in range(1, 5):
        outcomes.append(
            notification_deliver(notification_id=hook.pk, now=timezone.now() + timedelta(days=day)).outcome
        )
    assert outcomes == ["retry", "retry", "dead", "not_due"]
    hook.refresh_from_db()
    assert hook.state == DeliveryState.DEAD
    assert hook.attempts == 3
    assert list(hook.delivery_attempts.values_list("status_code", flat=True)) == [500, 500, 500]

    receiver.fail_with = None  # an operator fixes the receiver and retries the dead letter
    notification_retry(notification=hook)
    assert notification_deliver(notification_id=hook.pk).outcome == "sent"
    assert len(receiver.received) == 1


def test_a_blocked_bot_is_a_dead_letter_at_once(people, telegram):
    from notifications.models import TelegramChat

    TelegramChat.objects.filter(user=people["owner"]).update(
        chat_id=403
    )  # the fake answers 403 for this chat
    notification_events_record(events=[_risk_event(2)])
    n = Notification.objects.get(destination="telegram:403")
    assert notification_deliver(notification_id=n.pk).outcome == "dead"
    n.refresh_from_db()
    assert n.attempts == 1
    assert "403" in n.last_error


def test_two_workers_never_send_the_same_row(people, telegram):
    notification_events_record(events=[_risk_event(2)])
    n = _telegram_rows()[0]
    from notifications.services import delivery

    real_send = delivery._send

    def send_while_another_worker_tries(row):
        # a second worker picks the same row up while the first is sending
        assert notification_deliver(notification_id=row.pk).outcome == "not_due"
        return real_send(row)

    with mock.patch.object(delivery, "_send", side_effect=send_while_another_worker_tries):
        assert notification_deliver(notification_id=n.pk).outcome == "sent"
    assert len(telegram.sent) == 1


def test_a_worker_lost_mid_send_is_retried_after_its_lease(people, telegram):
    notification_events_record(events=[_risk_event(2)])
    n = _telegram_rows()[0]
    Notification.objects.filter(pk=n.pk).update(
        state=DeliveryState.SENDING, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert notifications_release_expired() == 1
    assert notification_deliver(notification_id=n.pk).outcome == "sent"
    n.refresh_from_db()
    assert n.attempts == 2


def test_rate_limits_one_per_second_per_chat_and_thirty_in_all(settings):
    limits = {redis_key("rate:t:chat:1"): 1, redis_key("rate:t:all"): 30}
    assert rate_slot_acquire(limits=limits) == 0
    wait = rate_slot_acquire(limits=limits)
    assert 0 < wait <= 1.0
    for chat in range(2, 31):  # 29 more chats: the total reaches 30
        assert (
            rate_slot_acquire(limits={redis_key(f"rate:t:chat:{chat}"): 1, redis_key("rate:t:all"): 30}) == 0
        )
    assert rate_slot_acquire(limits={redis_key("rate:t:chat:99"): 1, redis_key("rate:t:all"): 30}) > 0


def test_a_throttled_message_waits_its_turn_and_is_sent_once(people, telegram, settings):
    settings.TELEGRAM_RATE_PER_CHAT_PER_SECOND = 1
    notification_events_record(events=[_risk_event(n) for n in (2, 3, 4)])
    owner_rows = list(
        Notification.objects.filter(destination=f"telegram:{chat_of(people['owner'])}").order_by("pk")
    )
    with mock.patch("notifications.services.delivery._MAX_INLINE_WAIT_SECONDS", 0):
        outcomes = [notification_deliver(notification_id=n.pk).outcome for n in owner_rows]
    assert outcomes == ["sent", "throttled", "throttled"]
    throttled = Notification.objects.get(pk=owner_rows[1].pk)
    assert throttled.state == DeliveryState.PENDING
    assert throttled.attempts == 0  # waiting for a slot is not a failed attempt
    assert len(telegram.messages_to(chat_of(people["owner"]))) == 1


def test_the_sweep_queues_due_rows(people, telegram):
    from notifications import tasks

    notification_events_record(events=[_risk_event(2)])
    with mock.patch.object(tasks.notification_deliver_task, "apply_async") as queued:
        assert tasks.notifications_deliver_due() == Notification.objects.count()
    assert queued.call_count == Notification.objects.count()


def test_a_broker_outage_never_fails_the_caller(people, django_capture_on_commit_callbacks):
    from notifications import tasks

    with (
        mock.patch.object(tasks.notifications_deliver_for_events_task, "delay", side_effect=OSError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notification_events_record(events=[_risk_event(2)])
    assert Notification.objects.filter(state=DeliveryState.PENDING).exists()  # the sweep will deliver them


def test_the_bot_token_is_never_logged(people, telegram, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    notification_events_record(events=[_risk_event(2)])
    rows = _telegram_rows()
    assert notification_deliver(notification_id=rows[0].pk).outcome == "sent"
    telegram.fail_with = 502
    assert notification_deliver(notification_id=rows[1].pk).outcome == "retry"
    telegram.stop()
    assert (
        notification_deliver(notification_id=rows[1].pk, now=timezone.now() + timedelta(days=1)).outcome
        == "retry"
    )
    assert caplog.records
    assert "test-token" not in caplog.text
    assert not any("test-token" in (a.error or "") for a in DeliveryAttempt.objects.all())
