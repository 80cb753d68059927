"""One scheduled sync of one account, under a per-account lock that dies with its holder.

The lock (Redis `SET NX PX`) lives RECONCILIATION_LOCK_TTL_SECONDS (10: one sync interval) and is renewed every third
of that by a keeper thread while the sync runs, so a long sync keeps it and a SIGKILLed worker loses it within one
interval (the account is synced again by the next cycle, not after minutes). It is released, and renewed, with
atomic compare-and-set scripts: a sync that outlived its lock never touches the lock another sync took meanwhile.
Beside the lock, a `holder` key (one hour) names the worker and start of the sync that holds it; a sync that finds it
left behind by another token knows that sync died without releasing, and says so. A sync that finds the lock taken is
*skipped* and counted, with who holds it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
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

# Delete the lock (and its holder record) only while it still holds our token: one step on the server.
_RELEASE_SCRIPT = """
local released = 0
if redis.call('get', KEYS[1]) == ARGV[1] then released = redis.call('del', KEYS[1]) end
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
return released
"""
# Extend the lock only while it is ours.
_RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# Take the lock; on success record ourselves as holder and return the previous holder left behind (or false).
_ACQUIRE_SCRIPT = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, false} end
local previous = redis.call('get', KEYS[2])
redis.call('set', KEYS[2], ARGV[1], 'EX', ARGV[3])
return {1, previous}
"""
_HOLDER_SECONDS = 3600


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


def _holder_key(account_id: int) -> str:
    return account_lock_key(account_id) + ":holder"


def lock_ttl_seconds() -> float:
    return float(setting("RECONCILIATION_LOCK_TTL_SECONDS"))


def _describe(token: bytes | str | None) -> str:
    """'worker host:pid, started N s ago' from a token `<uuid>|<host>:<pid>|<epoch>`."""
    if not token:
        return "an unknown sync"
    text = token.decode() if isinstance(token, bytes) else token
    parts = text.split("|")
    if len(parts) != 3:
        return "an unknown sync"
    return f"worker {parts[1]}, started {max(time.time() - float(parts[2]), 0):.0f} s ago"


def account_lock_acquire(*, account_id: int) -> str | None:
    """A token when the lock was free (held for one TTL; keep it with AccountLockKeeper), None when a sync holds it."""
    token = f"{uuid.uuid4().hex}|{socket.gethostname()}:{os.getpid()}|{time.time():.3f}"
    acquired, previous = lock_client().eval(
        _ACQUIRE_SCRIPT, 2, account_lock_key(account_id), _holder_key(account_id), token,
        int(lock_ttl_seconds() * 1000), _HOLDER_SECONDS,
    )  # fmt: skip
    if not acquired:
        return None
    if previous:
        logger.warning(
            "sync lock of account %s was orphaned: the sync by %s never released it (its worker died); "
            "it expired and this sync takes over",
            account_id,
            _describe(previous),
        )
    return token


def account_lock_holder(*, account_id: int) -> str:
    return _describe(lock_client().get(account_lock_key(account_id)))


def account_lock_release(*, account_id: int, token: str) -> bool:
    """Release our own lock; True when it was still ours (if it expired and someone else took it, theirs stays)."""
    released = lock_client().eval(
        _RELEASE_SCRIPT, 2, account_lock_key(account_id), _holder_key(account_id), token
    )
    if not released:
        logger.warning("sync lock of account %s had expired and was not ours any more", account_id)
    return bool(released)


def account_lock_renew(*, account_id: int, token: str) -> bool:
    return bool(lock_client().eval(_RENEW_SCRIPT, 1, account_lock_key(account_id), token,
                                   int(lock_ttl_seconds() * 1000)))  # fmt: skip


class AccountLockKeeper:
    """Renews a held lock every third of its TTL from a daemon thread until stopped; dies with the process."""

    def __init__(self, *, account_id: int, token: str) -> None:
        self.account_id, self.token = account_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sync-lock-{account_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(lock_ttl_seconds() / 3):
            try:
                if not account_lock_renew(account_id=self.account_id, token=self.token):
                    logger.warning("sync lock of account %s was lost while its sync ran", self.account_id)
                    return
            except redis.RedisError as exc:  # Redis away for a moment: try again next period
                logger.warning("sync lock of account %s not renewed: %s", self.account_id, exc)

    def __enter__(self) -> AccountLockKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


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
        logger.info(
            "sync of account %s skipped: a sync by %s still holds its lock",
            account_id,
            account_lock_holder(account_id=account_id),
        )
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
        with AccountLockKeeper(account_id=account_id, token=token):
            result = account_sync(account=account, gateway=gateway, now=now, cycle_id=cycle_id)
        return ScheduledSyncOutcome(status=SYNCED if result.ok else FAILED, result=result)
    finally:
        account_lock_release(account_id=account_id, token=token)
