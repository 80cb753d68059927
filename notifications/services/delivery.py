"""Delivering one outbox row: throttle, claim, render, send, record the attempt, then sent / retry later / dead.

Exactly once per row as far as we can know it: a row is claimed with one conditional UPDATE (due → sending, with
a lease), so two workers never send it together; a sent row is never sent again. A worker that dies between the
send and the bookkeeping leaves a `sending` row whose lease expires; the sweep puts it back to retrying (the one
case where a receiver may see a message twice; webhook receivers de-duplicate on X-MT5Guard-Delivery).
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.crypto import decrypt_secret
from notifications import channels
from notifications.channels import ChannelError
from notifications.messages import notification_render, webhook_payload
from notifications.models import DUE_STATES, Channel, DeliveryAttempt, DeliveryState, Notification
from notifications.ratelimit import rate_slot_acquire, telegram_limits

logger = logging.getLogger(__name__)

# A throttled send waits in the worker when the slot is this close; longer waits go back to the queue.
_MAX_INLINE_WAIT_SECONDS = 1.5


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: str  # sent | retry | dead | throttled | not_due | taken | gone
    retry_in: float | None = None


def retry_delay(attempt: int) -> float:
    """Exponential back-off with full jitter on the upper half: base * 2^(n-1), capped."""
    ceiling = min(
        settings.NOTIFY_RETRY_CAP_SECONDS, settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _throttle(n: Notification) -> float:
    """Telegram's limits, shared by every process through Redis. 0.0: go; else seconds to wait."""
    if n.channel != Channel.TELEGRAM:
        return 0.0
    chat_id = int(n.destination.split(":", 1)[1])
    waited = 0.0
    while True:
        wait = rate_slot_acquire(limits=telegram_limits(chat_id))
        if wait <= 0:
            return 0.0
        if waited + wait > _MAX_INLINE_WAIT_SECONDS:
            return wait
        time.sleep(wait)
        waited += wait


def _send(n: Notification) -> int | None:
    tz = getattr(n.recipient, "time_zone", "UTC") if n.recipient_id else "UTC"
    message = notification_render(n, tz=tz)
    address = n.destination.split(":", 1)[1]
    if n.channel == Channel.TELEGRAM:
        return channels.telegram_send(chat_id=int(address), text=message.as_plain_text())
    if n.channel == Channel.EMAIL:
        return channels.email_send(address=address, subject=message.title, text=message.as_plain_text())
    if n.channel == Channel.WEBHOOK:
        hook = n.webhook
        if hook is None or not hook.enabled:
            raise ChannelError("webhook endpoint removed or disabled", permanent=True)
        return channels.webhook_send(
            url=hook.url,
            secret=decrypt_secret(hook.secret_encrypted),
            event=n.kind,
            delivery_id=str(n.pk),
            payload=webhook_payload(n, message),
        )
    raise ChannelError(f"unknown channel {n.channel!r}", permanent=True)


def _claim(n: Notification, *, now: datetime) -> bool:
    return bool(
        Notification.objects.filter(pk=n.pk, state__in=DUE_STATES, next_attempt_at__lte=now).update(
            state=DeliveryState.SENDING,
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
        )
    )


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryOutcome:
    now = now or timezone.now()
    n = (
        Notification.objects.select_related("recipient", "webhook", "account__latest_snapshot")
        .filter(pk=notification_id)
        .first()
    )
    if n is None:
        return DeliveryOutcome("gone")
    if n.state not in DUE_STATES or n.next_attempt_at > now:
        return DeliveryOutcome("not_due")
    try:
        wait = _throttle(n)
    except Exception as exc:  # Redis unreachable: never send unthrottled; try again soon
        logger.warning("notification %s: rate limiter unavailable (%s)", n.pk, exc)
        wait = settings.NOTIFY_RETRY_BASE_SECONDS
    if wait > 0:
        Notification.objects.filter(pk=n.pk, state__in=DUE_STATES).update(
            next_attempt_at=now + timedelta(seconds=wait)
        )
        return DeliveryOutcome("throttled", retry_in=wait)
    if not _claim(n, now=now):
        return DeliveryOutcome("taken")
    n.refresh_from_db(fields=["attempts", "state"])

    started = time.monotonic()
    status_code: int | None = None
    error: ChannelError | None = None
    try:
        status_code = _send(n)
    except ChannelError as exc:
        error = exc
        status_code = exc.status_code
    except (
        Exception
    ) as exc:  # a bug or an unexpected library error: recorded, retried like a transient failure
        logger.exception("notification %s: unexpected error while sending", n.pk)
        error = ChannelError(f"{type(exc).__name__}: {exc}"[:400])
    return _record(
        n, started_at=now, elapsed=time.monotonic() - started, status_code=status_code, error=error
    )


@transaction.atomic
def _record(
    n: Notification,
    *,
    started_at: datetime,
    elapsed: float,
    status_code: int | None,
    error: ChannelError | None,
) -> DeliveryOutcome:
    DeliveryAttempt.objects.create(
        notification=n,
        number=n.attempts,
        started_at=started_at,
        duration_ms=int(elapsed * 1000),
        ok=error is None,
        status_code=status_code,
        error="" if error is None else str(error)[:500],
    )
    now = started_at + timedelta(seconds=elapsed)
    if error is None:
        Notification.objects.filter(pk=n.pk).update(
            state=DeliveryState.SENT, sent_at=now, lease_until=None, last_error=""
        )
        return DeliveryOutcome("sent")
    if error.permanent or n.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        Notification.objects.filter(pk=n.pk).update(
            state=DeliveryState.DEAD, lease_until=None, last_error=str(error)[:500]
        )
        logger.error(
            "notification %s to %s is dead after %s attempt(s): %s", n.pk, n.channel, n.attempts, error
        )
        return DeliveryOutcome("dead")
    delay = max(retry_delay(n.attempts), error.retry_after or 0)
    Notification.objects.filter(pk=n.pk).update(
        state=DeliveryState.RETRYING,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=str(error)[:500],
    )
    logger.info("notification %s: attempt %s failed (%s); retry in %.0f s", n.pk, n.attempts, error, delay)
    return DeliveryOutcome("retry", retry_in=delay)


def notifications_release_expired(*, now: datetime | None = None) -> int:
    """`sending` rows whose lease ran out (the worker died mid-send): back to retrying, due now."""
    now = now or timezone.now()
    return Notification.objects.filter(state=DeliveryState.SENDING, lease_until__lt=now).update(
        state=DeliveryState.RETRYING,
        next_attempt_at=now,
        lease_until=None,
        last_error="worker lost during send",
    )


def notification_retry(*, notification: Notification) -> Notification:
    """Put a dead (or waiting) notification back in the queue now (admin / operator action)."""
    Notification.objects.filter(pk=notification.pk, state__in=[*DUE_STATES, DeliveryState.DEAD]).update(
        state=DeliveryState.RETRYING, next_attempt_at=timezone.now()
    )
    notification.refresh_from_db()
    return notification
