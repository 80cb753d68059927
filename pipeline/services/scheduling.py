"""One scheduled sync of one account, under a per-account lock.

Locks and time limits (seconds, reconciliation.conf): a sync task has a soft limit of 35 and a hard limit of 40; the
per-account lock (Redis `SET NX EX`) lives 45, longer than any sync can run, so two syncs of one account never
overlap. It is released with an atomic compare-and-delete (a Lua script): a sync that outlived its lock never
deletes the lock another sync took meanwhile. A killed worker's lock simply expires. A sync that finds the lock
taken is *skipped* and counted.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings

from accounts.models import AccountStatus, TradingAccount
from accounts.selectors import trading_account_gateway
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway
from pipeline.services.sync import AccountSyncResult, account_sync, account_sync_failure_record
from reconciliation.conf import setting
from reconciliation.services.scheduling import FAILED, SKIPPED, SYNCED

logger = logging.getLogger(__name__)

# Delete the key only while it still holds our token: GET and DEL in one step on the server.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class ScheduledSyncOutcome:
    status: str  # synced | failed | skipped
    result: AccountSyncResult | None = None

    @property
    def retryable(self) -> bool:
        return self.result is not None and self.result.retryable


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def lock_client() -> redis.Redis:
    """The Redis the sync locks live in (REDIS_URL), one client per process."""
    return _redis(settings.REDIS_URL)


def account_lock_key(account_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:pipeline:sync-lock:account:{account_id}"


def account_lock_acquire(*, account_id: int) -> str | None:
    """A token when the lock was free (now held for RECONCILIATION_LOCK_SECONDS), None when another sync holds it."""
    token = uuid.uuid4().hex
    if lock_client().set(
        account_lock_key(account_id), token, nx=True, ex=setting("RECONCILIATION_LOCK_SECONDS")
    ):
        return token
    return None


def account_lock_release(*, account_id: int, token: str) -> bool:
    """Release our own lock; True when it was still ours (if it expired and someone else took it, theirs stays)."""
    released = lock_client().eval(_RELEASE_SCRIPT, 1, account_lock_key(account_id), token)
    if not released:
        logger.warning("sync lock of account %s had expired and was not ours any more", account_id)
    return bool(released)


def account_sync_scheduled(
    *,
    account_id: int,
    cycle_id: int | None = None,
    now: datetime | None = None,
    gateway_for: Callable[..., Mt5Gateway] | None = None,
) -> ScheduledSyncOutcome:
    """Sync one account unless another sync of it is running (then: skipped). Never raises for terminal faults."""
    token = account_lock_acquire(account_id=account_id)
    if token is None:
        logger.info("sync of account %s skipped: the previous one is still running", account_id)
        return ScheduledSyncOutcome(status=SKIPPED)
    try:
        account = TradingAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE).first()
        if account is None:
            return ScheduledSyncOutcome(status=SKIPPED)
        try:
            gateway = (gateway_for or trading_account_gateway)(account=account)
        except GatewayError as exc:
            result = account_sync_failure_record(account=account, exc=exc, cycle_id=cycle_id)
            return ScheduledSyncOutcome(status=FAILED, result=result)
        result = account_sync(account=account, gateway=gateway, now=now, cycle_id=cycle_id)
        return ScheduledSyncOutcome(status=SYNCED if result.ok else FAILED, result=result)
    finally:
        account_lock_release(account_id=account_id, token=token)
