"""The periodic sync's cycles: one cycle fans out one sync per active account (the dispatch is the caller's: the
account-sync pipeline owns the sync itself and its per-account lock, see pipeline.services.scheduling).

Cycle counters (synced / failed / skipped / queue lag) are Redis counters, written by the account tasks and folded
into the SyncCycle rows by later cycles (a cycle is final once it is older than the lock lifetime).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.core.cache import cache
from django.utils import timezone

from accounts.selectors import trading_account_list_active
from reconciliation.conf import setting
from reconciliation.models import AccountSync, SyncCycle

logger = logging.getLogger(__name__)

SYNC_PERIODIC_TASK_NAME = "reconciliation: sync all active accounts"
SYNCED, FAILED, SKIPPED = "synced", "failed", "skipped"  # the outcomes a cycle counts
_COUNTERS = (SYNCED, FAILED, SKIPPED, "lag_ms", "lagged")
_COUNTER_TTL = 24 * 3600


class Dispatch(Protocol):
    def __call__(self, *, account_id: int, cycle_id: int, expires: float) -> None: ...


def _counter_key(cycle_id: int, name: str) -> str:
    return f"recon:cycle:{cycle_id}:{name}"


def _counter_add(cycle_id: int, name: str, delta: int = 1) -> None:
    try:
        cache.incr(_counter_key(cycle_id, name), delta)
    except ValueError:  # the cycle's counters expired: nothing left to report into
        logger.info("cycle %s counter %s is gone", cycle_id, name)


def sync_cycle_count(*, cycle_id: int | None, status: str, queue_lag_seconds: float | None = None) -> None:
    """Count one account's outcome into its cycle (no-op for syncs outside a cycle)."""
    if cycle_id is None:
        return
    _counter_add(cycle_id, status)
    if queue_lag_seconds is not None:
        _counter_add(cycle_id, "lag_ms", max(int(queue_lag_seconds * 1000), 0))
        _counter_add(cycle_id, "lagged")
    cache.set(_counter_key(cycle_id, "finished"), timezone.now().timestamp(), timeout=_COUNTER_TTL)


def sync_interval_seconds() -> int:
    """The beat interval as configured in the admin (django-celery-beat), else the default."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=SYNC_PERIODIC_TASK_NAME).select_related("interval").first()
    if task is not None and task.interval is not None:
        return max(int(task.interval.schedule.run_every.total_seconds()), 1)
    return int(setting("RECONCILIATION_SYNC_INTERVAL_SECONDS"))


def _cycles_refresh(*, now: datetime) -> None:
    """Fold the Redis counters into the cycles not final yet; a cycle older than the lock lifetime is final."""
    final_before = now - timedelta(seconds=setting("RECONCILIATION_LOCK_SECONDS"))
    cycles = list(SyncCycle.objects.filter(closed=False))
    if not cycles:
        return
    keys = [_counter_key(c.pk, name) for c in cycles for name in (*_COUNTERS, "finished")]
    values = cache.get_many(keys)
    for cycle in cycles:
        count = {name: int(values.get(_counter_key(cycle.pk, name)) or 0) for name in _COUNTERS}
        cycle.synced, cycle.failed, cycle.skipped = count[SYNCED], count[FAILED], count[SKIPPED]
        if count["lagged"]:
            cycle.queue_lag_seconds = (Decimal(count["lag_ms"]) / count["lagged"] / 1000).quantize(
                Decimal("0.001")
            )
        finished = values.get(_counter_key(cycle.pk, "finished"))
        if finished is not None:
            cycle.finished_at = datetime.fromtimestamp(float(finished), tz=now.tzinfo)
        cycle.closed = cycle.started_at < final_before
    SyncCycle.objects.bulk_update(
        cycles, ["synced", "failed", "skipped", "queue_lag_seconds", "finished_at", "closed"]
    )


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
        _cycles_refresh(now=now)
        previous = SyncCycle.objects.order_by("-started_at").first()
        lag = Decimal(0)
        if previous is not None:
            late = (now - previous.started_at).total_seconds() - previous.interval_seconds
            lag = Decimal(max(late, 0)).quantize(Decimal("0.001"))
        cycle = SyncCycle.objects.create(started_at=now, interval_seconds=interval, lag_seconds=lag)
        cache.set_many({_counter_key(cycle.pk, name): 0 for name in _COUNTERS}, timeout=_COUNTER_TTL)
        account_ids = list(trading_account_list_active().order_by("pk").values_list("pk", flat=True))
        expires = max(interval - 1, 1) if interval > 1 else interval * 0.9
        for account_id in account_ids:
            dispatch(account_id=account_id, cycle_id=cycle.pk, expires=expires)
        cycle.accounts, cycle.dispatched_at = len(account_ids), timezone.now()
        cycle.save(update_fields=["accounts", "dispatched_at"])
        _prune(now=now)
        return cycle
    finally:
        cache.delete("recon:lock:cycle")
