"""Per-account circuit breaker with shared state, and reconnect back-off.

The breaker's state lives in a store keyed by account so that every worker process sees the same circuit: a terminal
that is down for one Celery worker is down for all of them. `RedisBreakerStore` is the production store (one hash
per account, updated with an optimistic WATCH/MULTI transaction); `MemoryBreakerStore` is for pure unit tests and
single-process use.

States (the classic three):
* closed — calls go through; `failure_threshold` consecutive failures open the circuit;
* open — calls are refused without touching the terminal until its open period has passed since it opened;
* half_open — one trial call is let through (the first caller after the open period wins it); success closes the
  circuit, failure opens it again for twice as long. If the trial never reports back (a killed worker), another
  trial is granted after `reset_seconds`.

The open period starts at `reset_seconds` (default 8 s: shorter than the 10 s sync interval, so the first cycle after
a terminal comes back is the one that finds it) and doubles with each failed trial up to `max_reset_seconds`, so a
terminal that stays down is asked ever more rarely, and one that was down briefly is back within one cycle.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: str = CLOSED
    failures: int = 0  # consecutive failures
    opened_at: float | None = None  # epoch seconds (wall clock: shared between processes)
    trial_at: float | None = None  # when the current half-open trial was granted
    last_error: str = ""
    updated_at: float | None = None
    reopens: int = (
        0  # failed half-open trials since the circuit last closed: the open period doubles with each
    )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes | None) -> BreakerState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class BreakerStore(Protocol):
    def load(self, key: str) -> BreakerState: ...

    def update(self, key: str, change: Callable[[BreakerState], BreakerState]) -> BreakerState:
        """Atomically replace the state with change(current) and return the new state."""
        ...

    def delete(self, key: str) -> None: ...


class MemoryBreakerStore:
    """In-process store (tests, single-process tools)."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> BreakerState:
        with self._lock:
            return self._states.get(key, BreakerState())

    def update(self, key: str, change: Callable[[BreakerState], BreakerState]) -> BreakerState:
        with self._lock:
            new = change(self._states.get(key, BreakerState()))
            self._states[key] = new
            return new

    def delete(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)


class RedisBreakerStore:
    """One JSON value per account under `<prefix><key>`, shared by every process using the same Redis.

    Redis errors never block trading calls: the store then falls back to this process's memory (and logs once), so
    an outage of Redis degrades the breaker to per-process instead of failing every terminal call.
    """

    def __init__(
        self, client: Any, *, prefix: str = "mt5:circuit:", ttl_seconds: int = 7 * 24 * 3600
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._fallback = MemoryBreakerStore()
        self._warned = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisBreakerStore:
        import redis  # imported lazily so the package imports without redis installed

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, **kwargs)

    def _redis_failed(self, exc: Exception) -> None:
        if not self._warned:
            logger.warning(
                "circuit breaker store: Redis unavailable (%s); using per-process state", type(exc).__name__
            )
            self._warned = True

    def load(self, key: str) -> BreakerState:
        try:
            return BreakerState.from_json(self._redis.get(self._prefix + key))
        except Exception as exc:
            self._redis_failed(exc)
            return self._fallback.load(key)

    def update(self, key: str, change: Callable[[BreakerState], BreakerState]) -> BreakerState:
        import redis

        name = self._prefix + key
        try:
            with self._redis.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(name)
                        current = BreakerState.from_json(pipe.get(name))
                        new = change(current)
                        pipe.multi()
                        pipe.set(name, new.to_json(), ex=self._ttl)
                        pipe.execute()
                        return new
                    except redis.WatchError:
                        continue  # another process changed it between read and write: re-read
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return self._fallback.update(key, change)

    def delete(self, key: str) -> None:
        try:
            self._redis.delete(self._prefix + key)
        except Exception as exc:
            self._redis_failed(exc)
        self._fallback.delete(key)


class CircuitBreaker:
    """The breaker of one account. Thresholds are per instance; the state is in `store` under `key`."""

    def __init__(
        self,
        key: str,
        *,
        store: BreakerStore,
        failure_threshold: int = 3,
        reset_seconds: float = 8.0,
        max_reset_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.key = key
        self._store = store
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.max_reset_seconds = max(reset_seconds, max_reset_seconds or reset_seconds)
        self._clock = clock

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.key} threshold={self.failure_threshold} reset={self.reset_seconds}s>"

    def now(self) -> float:
        return self._clock()

    def open_seconds(self, state: BreakerState) -> float:
        """How long `state` (open) refuses calls: `reset_seconds`, doubled per failed trial, capped."""
        return min(self.max_reset_seconds, self.reset_seconds * 2 ** min(state.reopens, 30))

    @property
    def state(self) -> BreakerState:
        """The stored state (read-only; does not move open → half-open)."""
        return self._store.load(self.key)

    def allow(self) -> tuple[bool, BreakerState]:
        """May a call go to the terminal now? Moves open → half-open (granting the trial) when the reset time passed."""
        current = self._store.load(self.key)
        if current.state == CLOSED:
            return True, current
        now = self._clock()
        if current.state == OPEN and now - (current.opened_at or 0) < self.open_seconds(current):
            return False, current
        if current.state == HALF_OPEN and now - (current.trial_at or 0) < self.reset_seconds:
            return False, current  # someone else holds the trial

        granted = False

        def to_half_open(state: BreakerState) -> BreakerState:
            nonlocal granted
            at = self._clock()
            due = (state.state == OPEN and at - (state.opened_at or 0) >= self.open_seconds(state)) or (
                state.state == HALF_OPEN and at - (state.trial_at or 0) >= self.reset_seconds
            )
            if not due:
                granted = state.state == CLOSED
                return state
            granted = True
            return replace(state, state=HALF_OPEN, trial_at=at, updated_at=at)

        new = self._store.update(self.key, to_half_open)
        if granted and new.state == HALF_OPEN:
            logger.info("circuit %s half-open: letting one trial call through", self.key)
        return granted, new

    def record_success(self, *, seen: BreakerState | None = None) -> None:
        """`seen`: the state allow() granted this call on. When it was closed with no failures, the success leaves
        it so and the store is not even read (one round trip per call saved). A failure another process recorded
        while this call ran stays counted: the calls overlapped, and "success, then that failure" is an order
        they could have had."""
        if seen is not None and seen.state == CLOSED and seen.failures == 0:
            return
        current = self._store.load(self.key)
        if current.state == CLOSED and current.failures == 0:
            return  # the common path: nothing to write

        def close(state: BreakerState) -> BreakerState:
            return replace(
                state,
                state=CLOSED,
                failures=0,
                opened_at=None,
                trial_at=None,
                updated_at=self._clock(),
                reopens=0,
            )

        previous = current.state
        self._store.update(self.key, close)
        if previous != CLOSED:
            logger.info("circuit %s closed after a successful call", self.key)

    def record_failure(self, error: str = "") -> BreakerState:
        def fail(state: BreakerState) -> BreakerState:
            at = self._clock()
            failures = state.failures + 1
            if state.state == HALF_OPEN:
                return BreakerState(OPEN, failures, at, None, error[:500], at, state.reopens + 1)
            if state.state == CLOSED and failures >= self.failure_threshold:
                return BreakerState(OPEN, failures, at, None, error[:500], at)
            return replace(state, failures=failures, last_error=error[:500], updated_at=at)

        before = self._store.load(self.key).state
        new = self._store.update(self.key, fail)
        if new.state == OPEN and before != OPEN:
            logger.warning(
                "circuit %s opened after %d consecutive failures (last: %s)",
                self.key,
                new.failures,
                new.last_error,
            )
        return new

    def reset(self) -> None:
        self._store.delete(self.key)


class Backoff:
    """Exponential back-off with full jitter: delay(n) = uniform(0, min(cap, base * 2**(n-1))) for attempt n ≥ 1."""

    def __init__(
        self, *, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rng = rng

    def ceiling(self, attempt: int) -> float:
        if attempt < 1:
            return 0.0
        return min(self.cap, self.base * 2 ** min(attempt - 1, 62))

    def delay(self, attempt: int) -> float:
        return self._rng() * self.ceiling(attempt)
