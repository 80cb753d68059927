"""The outbox: notification rows written in the caller's transaction, delivered by Celery after it commits.

Nothing here talks to a network. The caller (a guard, a sync, a close, a risk change) pays a few queries when
something notifiable happens and none otherwise; delivery runs in the worker of the notifications queue.
"""

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications.events import Audience, Event, events_from_alerts
from notifications.models import EventKind, Notification, Severity
from notifications.selectors import destinations_for_events

logger = logging.getLogger(__name__)


def notification_events_record(*, events: Sequence[Event]) -> int:
    """One Notification per (event, destination); an event recorded again adds nothing (unique constraint).
    Returns the number of rows offered; delivery is queued once the transaction commits."""
    if not events:
        return 0
    destinations = destinations_for_events(events)
    now = timezone.now()
    rows = [
        Notification(
            event_key=event.key,
            kind=event.kind,
            severity=event.severity,
            account_id=event.account_id,
            recipient_id=dest.recipient_id,
            webhook_id=dest.webhook_id,
            channel=dest.channel,
            destination=dest.destination,
            payload=event.payload,
            occurred_at=event.occurred_at,
            next_attempt_at=now,
        )
        for event in events
        for dest in destinations.get(event.key, [])
    ]
    if not rows:
        return 0
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    keys = sorted({row.event_key for row in rows})
    transaction.on_commit(lambda: _queue_new(keys))
    return len(rows)


def _queue_new(event_keys: list[str]) -> None:
    """One broker message per batch. A broker that is down only delays delivery: the periodic sweep finds the
    pending rows; the caller (a guard) is never failed by it."""
    from notifications.tasks import notifications_deliver_for_events_task

    try:
        notifications_deliver_for_events_task.delay(event_keys)
    except Exception:  # the broker is down or refused: the sweep delivers them
        logger.warning(
            "notifications for %s not queued now; the periodic sweep will deliver them", event_keys
        )


def notifications_for_alerts(*, alerts: Sequence[Any]) -> int:
    """Called by guards.services.alerts.alerts_record inside the transaction that writes the alerts."""
    return notification_events_record(events=events_from_alerts(alerts))


def _risk_values(config: Any) -> dict[str, Any]:
    return {
        "risk_percent": str(config.risk_percent),
        "entry_splits": [str(part) for part in config.entry_splits],
        "margin_buffer_percent": str(config.margin_buffer_percent),
        "max_snapshot_age_seconds": config.max_snapshot_age_seconds,
    }


def risk_config_changed_notify(*, config: Any, previous: Any, actor: Any) -> int:
    """Called by risk.services.risk_config_update in its transaction: owners and support hear of every change."""
    old, new = _risk_values(previous), _risk_values(config)
    return notification_events_record(
        events=[
            Event(
                key=f"risk:{config.version}",
                kind=EventKind.RISK_CONFIG_CHANGED,
                severity=Severity.WARNING,
                occurred_at=config.changed_at or timezone.now(),
                audience=Audience.OPERATORS,
                payload={
                    "version": config.version,
                    "previous_version": previous.version,
                    "changed_by": actor.get_username(),
                    "reason": config.reason,
                    "changes": {k: {"old": old[k], "new": new[k]} for k in new if old[k] != new[k]},
                },
            )
        ]
    )
