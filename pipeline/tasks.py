"""Celery entry points of the periodic sync. Thin: load ids, call the services, decide on retries.

Task names changed from `reconciliation.tasks.*` when the pipeline moved here; `setup_periodic_tasks` rewrites the
beat row (update by name), so an existing schedule points at the new name after the next deploy.

* `accounts_sync_cycle` runs every RECONCILIATION_SYNC_INTERVAL_SECONDS (beat, declared by setup_periodic_tasks,
  editable in the admin) and fans out one `account_sync` per active account, each expiring before the next cycle,
  published in batches (core.fanout.task_fanout: 10 000 accounts in well under a second).
* `account_sync` syncs one account under its lock (a second run of the same account is skipped and counted). Late
  acknowledgement + re-queue on worker loss; one retry after 2 s, only for a lost terminal link
  (GatewayUnavailable, not an open circuit). Concurrency: the worker's --concurrency (CELERY_WORKER_CONCURRENCY),
  optionally on a dedicated queue (RECONCILIATION_SYNC_QUEUE).
"""

from __future__ import annotations

import time

from celery import shared_task

from core.fanout import task_fanout
from pipeline.services import account_sync_scheduled
from reconciliation.conf import setting
from reconciliation.services import sync_cycle_count, sync_cycle_run

RETRY_COUNTDOWN_SECONDS = 2


def _dispatch(*, account_ids: list[int], cycle_id: int, expires: float) -> None:
    """One account_sync message per account, published in batches (core.fanout: one Redis LPUSH per 1 000)."""
    dispatched_at = time.time()  # the queue lag each sync reports is counted from here
    task_fanout(
        account_sync,
        [
            ([account_id], {"cycle_id": cycle_id, "dispatched_at": dispatched_at})
            for account_id in account_ids
        ],
        queue=setting("RECONCILIATION_SYNC_QUEUE"),
        expires=expires,
    )


@shared_task(name="pipeline.tasks.accounts_sync_cycle", ignore_result=True)
def accounts_sync_cycle() -> int | None:
    cycle = sync_cycle_run(dispatch=_dispatch)
    return cycle.pk if cycle is not None else None


@shared_task(
    bind=True,
    name="pipeline.tasks.account_sync",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=1,
    soft_time_limit=setting("RECONCILIATION_SYNC_SOFT_TIME_LIMIT"),
    time_limit=setting("RECONCILIATION_SYNC_TIME_LIMIT"),
)
def account_sync(
    self, account_id: int, cycle_id: int | None = None, dispatched_at: float | None = None
) -> str:
    queue_lag = (
        time.time() - dispatched_at if dispatched_at is not None and self.request.retries == 0 else None
    )
    outcome = account_sync_scheduled(account_id=account_id, cycle_id=cycle_id)
    if outcome.retryable and self.request.retries < self.max_retries and not self.request.called_directly:
        raise self.retry(countdown=RETRY_COUNTDOWN_SECONDS)
    sync_cycle_count(cycle_id=cycle_id, status=outcome.status, queue_lag_seconds=queue_lag)
    return outcome.status
