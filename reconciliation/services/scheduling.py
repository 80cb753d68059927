"""The periodic sync's cycles: one cycle fans out one sync per active account (the dispatch is the caller's: the
account-sync pipeline owns the sync itself and its per-account lock, see pipeline.services.scheduling).

Cycle statistics are durable: synced and failed are counted from the AccountSync rows (one per sync, in the
database), skipped by an increment of the cycle's row, so losing Redis loses nothing but the queue lag, mean and max
(kept in Redis while the cycle runs; a lost value leaves the stored one alone, never a zero). Cycles that could not run at all
(broker or database down) are recorded as *missed* by the first cycle that runs again, so the gap is visible.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.core.cache import cache
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from accounts.selectors import trading_account_list_active
from reconciliation.conf import setting
from reconciliation.models import AccountSync, SyncCycle

logger = logging.getLogger(__name__)

SYNC_PERIODIC_TASK_NAME = "reconciliation: sync all active accounts"
SYNCED, FAILED, SKIPPED = "synced", "failed", "skipped"  # the outcomes a cycle counts
_LAG_COUNTERS = ("lag_ms", "lagged", "lag_max_ms")
# One round trip per sync for the three: the sum and count (the mean), the max; nothing if the cycle's counters
# expired (no cycle left to report into).
_LAG_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
  redis.call('SET', KEYS[3], ARGV[1], 'KEEPTTL')
end
return 1
"""
_COUNTER_TTL = 24 * 3600


class Dispatch(Protocol):
    """Queue one sync per account id (in that order), each expiring `expires` seconds after now."""

    def __call__(self, *, account_ids: list[int], cycle_id: int, expires: float) -> None: ...


def _counter_key(cycle_id: int, name: str) -> str:
    return f"recon:cycle:{cycle_id}:{name}"


def _lag_report(cycle_id: int, lag_ms: int) -> None:
    keys = [cache.make_and_validate_key(_counter_key(cycle_id, name)) for name in _LAG_COUNTERS]
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django's redis client
    if not client.eval(_LAG_SCRIPT, len(keys), *keys, lag_ms):
        logger.info("cycle %s lag counters are gone", cycle_id)


def sync_cycle_count(*, cycle_id: int | None, status: str, queue_lag_seconds: float | None = None) -> None:
    """Count one account's outcome into its cycle (no-op for syncs outside a cycle). Synced and failed syncs are
    already on record (their AccountSync row); a skip leaves no row, so it is counted on the cycle's row."""
    if cycle_id is None:
        return
    if status == SKIPPED:
        SyncCycle.objects.filter(pk=cycle_id).update(skipped=F("skipped") + 1)
    if queue_lag_seconds is not None:
        _lag_report(cycle_id, max(int(queue_lag_seconds * 1000), 0))


def sync_interval_seconds() -> int:
    """The beat interval as configured in the admin (django-celery-beat), else the default."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=SYNC_PERIODIC_TASK_NAME).select_related("interval").first()
    if task is not None and task.interval is not None:
        return max(int(task.interval.schedule.run_every.total_seconds()), 1)
    return int(setting("RECONCILIATION_SYNC_INTERVAL_SECONDS"))


def sync_cycles_recount(*, now: datetime) -> None:
    """Recount the cycles not final yet from the durable records; a cycle older than the lock lifetime is final."""
    final_before = now - timedelta(seconds=setting("RECONCILIATION_LOCK_SECONDS"))
    cycles = list(SyncCycle.objects.filter(closed=False, missed=False))
    if not cycles:
        return
    # A retried sync leaves two rows: an account counts once, as synced if any of its syncs in the cycle was ok.
    counts = {
        row["cycle_id"]: row
        for row in AccountSync.objects.filter(cycle_id__in=[c.pk for c in cycles])
        .values("cycle_id")
        .annotate(
            accounts=Count("account", distinct=True),
            ok_accounts=Count("account", distinct=True, filter=Q(ok=True)),
            finished=Max("finished_at"),
        )
    }
    lags = cache.get_many([_counter_key(c.pk, name) for c in cycles for name in _LAG_COUNTERS])
    for cycle in cycles:
        row = counts.get(cycle.pk)
        if row is not None:
            cycle.synced, cycle.failed = row["ok_accounts"], row["accounts"] - row["ok_accounts"]
            cycle.finished_at = row["finished"]
        lagged = int(lags.get(_counter_key(cycle.pk, "lagged")) or 0)
        if lagged:  # only while Redis still has them: a lost counter leaves the stored mean alone
            lag_ms = int(lags.get(_counter_key(cycle.pk, "lag_ms")) or 0)
            cycle.queue_lag_seconds = (Decimal(lag_ms) / lagged / 1000).quantize(Decimal("0.001"))
            lag_max_ms = int(lags.get(_counter_key(cycle.pk, "lag_max_ms")) or 0)
            cycle.queue_lag_max_seconds = (Decimal(lag_max_ms) / 1000).quantize(Decimal("0.001"))
        cycle.closed = cycle.started_at < final_before
    SyncCycle.objects.bulk_update(
        cycles, ["synced", "failed", "queue_lag_seconds", "queue_lag_max_seconds", "finished_at", "closed"]
    )


def _missed_record(*, previous: SyncCycle | None, now: datetime, interval: int) -> None:
    """Cycles that should have started between the previous one and now but never ran: one `missed` row for the
    gap (beat could not reach the broker or the database), so the status pages show it."""
    if previous is None or previous.missed:
        return
    slots = int((now - previous.started_at).total_seconds() // previous.interval_seconds) - 1
    if slots < 1:
        return
    SyncCycle.objects.create(
        started_at=previous.started_at + timedelta(seconds=previous.interval_seconds),
        interval_seconds=previous.interval_seconds,
        missed=True,
        missed_cycles=slots,
        closed=True,
    )
    logger.warning("%s sync cycle(s) did not run before %s (broker or database down)", slots, now.isoformat())


def _prune(*, now: datetime) -> None:
    cutoff = now - timedelta(hours=setting("RECONCILIATION_RUN_RETENTION_HOURS"))
    AccountSync.objects.filter(started_at__lt=cutoff).delete()
    SyncCycle.objects.filter(started_at__lt=cutoff).delete()


def sync_cycle_run(*, dispatch: Dispatch, now: datetime | None = None) -> SyncCycle | None:
    """Start one cycle: record it, fan out one sync per active account (each expiring before the next cycle),
    fold earlier cycles' counters, prune old logs. Returns None when another cycle is still dispatching."""
    now = now or timezone.now()
    interval = sync_interval_seconds()
    if not cache.add("recon:lock:cycle", 1, timeout=interval):
        logger.warning("sync cycle skipped: the previous cycle is still dispatching")
        return None
    try:
        sync_cycles_recount(now=now)
        previous = SyncCycle.objects.filter(missed=False).order_by("-started_at").first()
        lag = Decimal(0)
        if previous is not None:
            late = (now - previous.started_at).total_seconds() - previous.interval_seconds
            lag = Decimal(max(late, 0)).quantize(Decimal("0.001"))
        _missed_record(previous=previous, now=now, interval=interval)
        cycle = SyncCycle.objects.create(started_at=now, interval_seconds=interval, lag_seconds=lag)
        cache.set_many({_counter_key(cycle.pk, name): 0 for name in _LAG_COUNTERS}, timeout=_COUNTER_TTL)
        account_ids = list(trading_account_list_active().order_by("pk").values_list("pk", flat=True))
        expires = max(interval - 1, 1) if interval > 1 else interval * 0.9
        dispatch(
            account_ids=account_ids, cycle_id=cycle.pk, expires=expires
        )  # batched: 10 000 in well under 1 s
        cycle.accounts, cycle.dispatched_at = len(account_ids), timezone.now()
        cycle.save(update_fields=["accounts", "dispatched_at"])
        _prune(now=now)
        return cycle
    finally:
        cache.delete("recon:lock:cycle")
