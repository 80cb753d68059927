"""The retry schedule of failed closes (shared/spec/guards.md "A failed close is retried while the reason to close
stands").

For a liquidation and on a halted account (close intents under the episode's key `halt:<trip_id>`), a close that
ends `failed` is attempted again while the position is open and the account is halted in that same episode: after
5 s, 10 s, 20 s, 40 s, then every 60 s. Each attempt is its own intent (attempt number in its idempotency key,
`retry_of` the failed one). The due time is stored on the failed intent (`retry_at`), so the schedule survives a
restart; three drivers read it: the Celery task queued with the countdown, the periodic intent recovery, and the
halted re-check of every sync. Whoever comes first creates the next attempt; the others find it done.
"""

from datetime import datetime, timedelta

from guards.models import CloseIntent, GuardState, GuardStatus
from guards.services.dispatch import dispatcher_get

RETRY_DELAYS_SECONDS = (5, 10, 20, 40)
RETRY_EVERY_SECONDS = 60


def retry_delay_seconds(attempt: int) -> int:
    """Delay after the failure of attempt `attempt` (1-based): 5, 10, 20, 40, then 60 for ever."""
    if 1 <= attempt <= len(RETRY_DELAYS_SECONDS):
        return RETRY_DELAYS_SECONDS[attempt - 1]
    return RETRY_EVERY_SECONDS


def halt_trigger_key(trip_id: object) -> str:
    """One key per liquidation episode: the liquidation and any position that appears while halted share it."""
    return f"halt:{trip_id}"


def retry_reason_stands(*, intent: CloseIntent) -> bool:
    """True while the account is halted in the episode that asked for this close."""
    if not intent.trigger_key.startswith("halt:"):
        return False
    trip_id = GuardState.objects.filter(account_id=intent.account_id, status=GuardStatus.HALTED).values_list(
        "trip_id", flat=True
    )
    return any(halt_trigger_key(t) == intent.trigger_key for t in trip_id)


def retry_schedule(*, intent: CloseIntent, now: datetime, seconds: float) -> datetime:
    """Store when to look at this intent again and queue a task for that moment (after commit)."""
    intent.retry_at = now + timedelta(seconds=seconds)
    intent.save(update_fields=["retry_at", "updated_at"])
    dispatcher_get().close_retry(account_id=intent.account_id, intent_id=intent.pk, countdown=seconds)
    return intent.retry_at
