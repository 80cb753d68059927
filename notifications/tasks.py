"""Celery entry points of the notifications, on their own queue (NOTIFY_QUEUE) so a slow channel never holds a
worker slot that a sync, a guard or a close needs. Thin: ids in, services called, follow-ups queued."""

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from notifications import services
from notifications.models import DUE_STATES, Notification
from notifications.selectors import notification_ids_due

logger = logging.getLogger(__name__)

NOTIFICATIONS_PERIODIC_TASKS: list[dict[str, Any]] = [
    {
        "name": "notifications: deliver due",
        "task": "notifications.tasks.notifications_deliver_due",
        "every": 15,
        "description": "Queue notifications whose retry time came (and any a stopped broker or worker left).",
    },
    {
        "name": "notifications: read telegram bot messages",
        "task": "notifications.tasks.telegram_updates_poll",
        "every": 5,
        "description": "Link Telegram chats that sent a one-time code to the bot.",
    },
    {
        "name": "notifications: stale accounts",
        "task": "notifications.tasks.accounts_stale_notify",
        "every": 60,
        "description": "Tell the trader and operators when an account has had no fresh reading for too long.",
    },
    {
        "name": "notifications: daily divergence digest",
        "task": "notifications.tasks.divergence_digest_notify",
        "every": 900,
        "description": "Once a day (from NOTIFY_DIGEST_HOUR_UTC): open divergences per account, for support.",
    },
]


def _queue(notification_id: int, countdown: float = 0) -> None:
    notification_deliver_task.apply_async(args=[notification_id], countdown=max(0.0, countdown))


@shared_task(name="notifications.tasks.notification_deliver", ignore_result=True, acks_late=True)
def notification_deliver_task(notification_id: int) -> str:
    result = services.notification_deliver(notification_id=notification_id)
    if result.outcome in ("retry", "throttled") and result.retry_in is not None:
        _queue(notification_id, countdown=result.retry_in)
    return result.outcome


@shared_task(name="notifications.tasks.notifications_deliver_for_events", ignore_result=True)
def notifications_deliver_for_events_task(event_keys: list[str]) -> int:
    ids = list(
        Notification.objects.filter(event_key__in=event_keys, state__in=DUE_STATES).values_list(
            "pk", flat=True
        )
    )
    for notification_id in ids:
        _queue(notification_id)
    return len(ids)


@shared_task(name="notifications.tasks.notifications_deliver_due", ignore_result=True)
def notifications_deliver_due() -> int:
    services.notifications_release_expired()
    ids = notification_ids_due(now=timezone.now())
    for notification_id in ids:
        _queue(notification_id)
    return len(ids)


@shared_task(name="notifications.tasks.telegram_updates_poll", ignore_result=True)
def telegram_updates_poll() -> int:
    return services.telegram_updates_poll()


@shared_task(name="notifications.tasks.accounts_stale_notify", ignore_result=True)
def accounts_stale_notify() -> int:
    return services.accounts_stale_notify(now=timezone.now())


@shared_task(name="notifications.tasks.divergence_digest_notify", ignore_result=True)
def divergence_digest_notify() -> int:
    return services.divergence_digest_notify(now=timezone.now())
