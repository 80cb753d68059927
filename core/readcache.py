"""Redis-cached reads of one account (status, positions, guards), invalidated when a sync commits.

Each account has a version number in Redis (`acct-ver:<id>`). A cached read stores (version, value) under a key that
names the account, the read and the scope; a read fetches the version and the entry in one round trip and uses the
entry only if its version is the current one. `account_reads_invalidate(account_id=)` bumps the version after
commit — the sync calls it, and so does every service that changes what these reads show. Entries also expire after
READ_CACHE_SECONDS, a backstop for a write that forgot to invalidate.

With Redis down the reads come from the database: logged once (until Redis answers again), never an error.
"""

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")
READ_CACHE_SECONDS = 5
VERSION_SECONDS = 7 * 24 * 3600

_down_logged = threading.Event()


def _version_key(account_id: int) -> str:
    return f"acct-ver:{account_id}"


def _cache_failed(exc: Exception) -> None:
    if not _down_logged.is_set():
        _down_logged.set()
        logger.warning("read cache unavailable, reading from the database: %s", exc)


def _cache_ok() -> None:
    if _down_logged.is_set():
        _down_logged.clear()
        logger.info("read cache available again")


def account_cached(*, account_id: int, name: str, build: Callable[[], T], scope: str = "") -> T:
    """The value of `build()` for this account's read `name` (and `scope`, when it depends on who asks), from the
    cache when it is current. `build` must return picklable data (serialized output, not model instances)."""
    value_key = f"acct-read:{account_id}:{name}:{scope}"
    version_key = _version_key(account_id)
    try:
        found = cache.get_many([version_key, value_key])
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
        return build()
    version = found.get(version_key, 0)
    entry = found.get(value_key)
    if entry is not None and entry[0] == version:
        _cache_ok()
        return entry[1]
    value = build()
    try:
        cache.set(value_key, (version, value), timeout=READ_CACHE_SECONDS)
        _cache_ok()
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
    return value


def _bump(account_id: int) -> None:
    key = _version_key(account_id)
    try:
        try:
            cache.incr(key)
        except ValueError:  # no version yet
            cache.add(key, 1, timeout=VERSION_SECONDS)
    except (RedisError, OSError) as exc:
        _cache_failed(exc)


def account_reads_invalidate(*, account_id: int) -> None:
    """Make the account's cached reads stale once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _bump(account_id))
