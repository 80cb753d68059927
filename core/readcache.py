"""Redis-cached reads of one account (status, positions, guards), invalidated when a sync commits.

Each account has a version number in Redis (`acct-ver:<id>`). A cached read stores (version, value) under a key that
names the account, the read and the scope; a read fetches the version and the entry in one round trip and uses the
entry only if its version is the current one. `account_reads_invalidate(account_id=)` bumps the version after
commit — the sync calls it, and so does every service that changes what these reads show. Entries also expire after
READ_CACHE_SECONDS, a backstop for a write that forgot to invalidate.

With Redis down the reads come from the database: logged once (until Redis answers again), never an error.

Who may read is cached too, so a cached read costs no query at all (docs/PERFORMANCE.md, "API"):
- `principal_cached`: the signed-in user (JWT authentication) without its password hash, the password deferred;
- `account_read_cached`: "user U may see account A" next to the account's cached read, in the same round trip.
The entry keeps the rendered JSON beside the data: the cached reads' fast path (core/api/fastread.py) fetches the
principal, the access decision, the entry and the throttle's counters in one pipelined round trip and sends those
bytes, without leaving the event loop.
Both carry the *access epoch* (`access-epoch`), one random token for the whole site that `access_epoch_bump()` replaces
whenever who-may-see-what can have changed (a user saved, group membership, an account's owner; accounts/signals.py),
at once and again after commit. An entry of an older epoch is not used. Refusals are never cached.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError
from rest_framework.renderers import JSONRenderer

logger = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A")
U = TypeVar("U")
READ_CACHE_SECONDS = 5
VERSION_SECONDS = 7 * 24 * 3600
ACCESS_EPOCH_KEY = "access-epoch"
ACCESS_SECONDS = 300  # a backstop; entries are invalidated by the epoch

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


def _bump(account_id: int) -> None:
    """One round trip (every sync commits one): INCR creates a missing version at 1, EXPIRE NX gives a new one its
    lifetime and leaves a running one's alone. `cache.incr` took two (EXISTS, then INCRBY) and an `add` when the
    version was missing. The value is a plain integer, as the cache's serializer reads and writes integers."""
    try:
        get_client = getattr(getattr(cache, "_cache", None), "get_client", None)  # Django's RedisCache
        if get_client is None:  # another backend (a test's local memory): its own incr
            try:
                cache.incr(_version_key(account_id))
            except ValueError:  # no version yet
                cache.add(_version_key(account_id), 1, timeout=VERSION_SECONDS)
            return
        key = cache.make_and_validate_key(_version_key(account_id))
        with get_client(key, write=True).pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, VERSION_SECONDS, nx=True)
            pipe.execute()
    except (RedisError, OSError) as exc:
        _cache_failed(exc)


def account_reads_invalidate(*, account_id: int) -> None:
    """Make the account's cached reads stale once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _bump(account_id))


def _access_key(user_id: int, account_id: int) -> str:
    return f"acct-access:{user_id}:{account_id}"


def account_read_cached(
    *, user_id: int, account_id: int, name: str, load_account: Callable[[], A], build: Callable[[A], T]
) -> T:
    """The account's read `name`, built by `build(account)` when not cached. `load_account()` is the access check
    (it raises when the user may not see the account); it is skipped, with `build`, while both the read and the
    user's access to the account are cached and current: one Redis round trip and no query for a cached read."""
    value_key = _value_key(account_id, name)
    version_key = _version_key(account_id)
    access_key = _access_key(user_id, account_id)
    try:
        found = cache.get_many([version_key, value_key, ACCESS_EPOCH_KEY, access_key])
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
        return build(load_account())
    try:
        epoch = _epoch_of(found)
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
        return build(load_account())
    version = found.get(version_key, 0)
    entry: tuple[Any, T, bytes] | None = found.get(value_key)
    current = entry if entry is not None and entry[0] == version else None
    if current is not None and found.get(access_key) == epoch:
        _cache_ok()
        return current[1]
    account = load_account()  # raises for a user who may not see it: nothing is cached then
    value = current[1] if current is not None else build(account)
    try:
        cache.set(access_key, epoch, timeout=ACCESS_SECONDS)
        if current is None:
            # the JSON the API answers, rendered once: the fast path (core/api/fastread.py) sends these bytes
            cache.set(value_key, (version, value, JSONRenderer().render(value)), timeout=READ_CACHE_SECONDS)
        _cache_ok()
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
    return value


def _value_key(account_id: int, name: str) -> str:
    return f"acct-read:{account_id}:{name}:"


def _principal_key(user_id: Any) -> str:
    return f"principal:{user_id}"


def account_read_keys(*, user_id: int, account_id: int, name: str) -> list[str]:
    """The keys (before the cache's prefix) that decide a cached read of `user_id` without the database: the access
    epoch, the principal, the account's version, the entry and the user's access to the account. Fetched in one
    round trip by the fast path (core/api/fastread.py), then given to `account_read_body`."""
    return [
        ACCESS_EPOCH_KEY,
        _principal_key(user_id),
        _version_key(account_id),
        _value_key(account_id, name),
        _access_key(user_id, account_id),
    ]


def account_read_body(values: list[Any]) -> bytes | None:
    """The rendered JSON of the read whose `account_read_keys` held `values`, if all of it is current: the principal
    and the access decision of the current epoch, the entry of the account's current version. None otherwise (the
    caller then takes the full path: authentication, access check, build)."""
    _epoch, _principal, version, entry, _access = values
    if not _access_current(values) or entry is None or len(entry) != 3 or entry[0] != (version or 0):
        return None
    return entry[2]  # type: ignore[no-any-return]


def _access_current(values: list[Any]) -> bool:
    epoch, principal, _version, _entry, access = values
    return epoch is not None and principal is not None and principal[0] == epoch and access == epoch


def account_read_needs_build(values: list[Any]) -> bool:
    """Only the entry is missing or stale (the principal and the access decision are current): once one request
    has built it, the others of the moment can take it from the cache instead of building it too."""
    return _access_current(values) and account_read_body(values) is None


def principal_cached(*, user_id: Any, load: Callable[[], U], fields: list[str]) -> U:
    """The user `load()` returns (a model instance that passed authentication), cached as its `fields` (never the
    password hash) and rebuilt with `Model.from_db`, so a field left out loads from the database if anything
    reads it. One Redis round trip and no query while current."""
    key = _principal_key(user_id)
    try:
        found = cache.get_many([ACCESS_EPOCH_KEY, key])
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
        return load()
    try:
        epoch = _epoch_of(found)
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
        return load()
    entry = found.get(key)
    if entry is not None and entry[0] == epoch:
        model, values = entry[1], entry[2]
        return model.from_db(None, fields, [values[f] for f in fields])  # type: ignore[no-any-return]
    user = load()
    try:
        cache.set(key, (epoch, type(user), {f: getattr(user, f) for f in fields}), timeout=ACCESS_SECONDS)
        _cache_ok()
    except (RedisError, OSError) as exc:
        _cache_failed(exc)
    return user


def _bump_epoch() -> None:
    try:
        cache.set(ACCESS_EPOCH_KEY, uuid.uuid4().hex, timeout=None)
    except (RedisError, OSError) as exc:
        _cache_failed(exc)


def _epoch_of(found: dict[str, Any]) -> str:
    """The current access epoch: a random token, so an epoch key lost to eviction and started again never matches
    the entries of an earlier one (a counter restarting at 1 would)."""
    epoch = found.get(ACCESS_EPOCH_KEY)
    if epoch is None:
        cache.add(ACCESS_EPOCH_KEY, uuid.uuid4().hex, timeout=None)
        epoch = cache.get(ACCESS_EPOCH_KEY)
    return str(epoch)


def access_epoch_bump() -> None:
    """Who may see what may have changed: forget every cached principal and access decision, now (so this
    transaction's own later reads see it) and again after commit (a read between the two may have re-cached
    what the database still held)."""
    _bump_epoch()
    transaction.on_commit(_bump_epoch)
