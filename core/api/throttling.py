"""DRF's throttles on the shared cache, failing open: with Redis down a request is served (and the outage logged
once), never answered with a 500 — the read cache falls back to the database the same way (core/readcache.py).

The rates keep DRF's meaning (N requests per period, per scope and user or IP), counted as a sliding window: two
fixed-window counters, the previous one weighted by how much of it still overlaps the last period. One pipelined
Redis round trip per request (INCR, EXPIRE, GET); DRF's own throttle reads and rewrites a pickled list of every
request's time within the period on every request (two round trips, and up to N floats each way: 1 200 for a bot at
the default user rate). A refused request is not counted (DECR), as in DRF.
"""

import logging
import math
import threading
from typing import Any

from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)
_down_logged = threading.Event()


class _FailOpen:
    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            allowed = super().allow_request(request, view)  # type: ignore[misc]
        except (RedisError, OSError) as exc:
            if not _down_logged.is_set():
                _down_logged.set()
                logger.warning("throttling off: the cache is unavailable: %s", exc)
            return True
        _down_logged.clear()
        return bool(allowed)


def sliding_window_wait(*, limit: int, duration: float, elapsed: float, previous: int, current: int) -> float:
    """Seconds until one more request fits: `current` requests counted in this window (`elapsed` seconds into it),
    `previous` in the window before, weighted by the part of it still inside the last `duration` seconds."""
    if current >= limit:
        # not before the next window; there the count is current * (1 - f) + 1, which must be <= limit
        fraction = 1 - (limit - 1) / current if current else 0.0
        return (duration - elapsed) + max(fraction, 0.0) * duration
    if previous == 0:
        return 0.0
    needed = 1 - (limit - 1 - current) / previous  # the fraction of this window after which it fits
    return max(needed * duration - elapsed, 0.0)


PRECOUNTED_SCOPE_KEY = "mt5guard.throttle_precounted"


def precounted_for(request: Any) -> dict[str, tuple[int, int]]:
    """Counts already made for this request by the cached reads' fast path (core/api/fastread.py: its one pipeline
    counted it, then it handed the request to Django): {current window key: (current, previous)}, kept in the ASGI
    scope. Empty for any other request."""
    scope = getattr(getattr(request, "_request", request), "scope", None)
    if scope is None:
        return {}
    counted: dict[str, tuple[int, int]] = scope.get(PRECOUNTED_SCOPE_KEY) or {}
    return counted


class _SlidingWindow(throttling.SimpleRateThrottle):
    num_requests: int
    duration: int
    _wait: float

    def window_keys(self, request: Any, view: Any) -> tuple[str, str] | None:
        """The (current, previous) window counters this request counts against, or None if this throttle does not
        apply to it. Sets the state `counts_fit` and `allow_request` use."""
        if self.rate is None:
            return None
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return None
        self._now = self.timer()
        self._window = int(self._now // float(self.duration))
        return (
            self.cache.make_and_validate_key(f"{self.key}:{self._window}"),
            self.cache.make_and_validate_key(f"{self.key}:{self._window - 1}"),
        )

    def count_commands(self, pipe: Any, keys: tuple[str, str]) -> None:
        """Queue the counting (INCR, EXPIRE, GET) on a pipeline: three replies, read by `counts_of`."""
        pipe.incr(keys[0])
        pipe.expire(keys[0], int(float(self.duration) * 2) + 1)
        pipe.get(keys[1])

    @staticmethod
    def counts_of(replies: list[Any]) -> tuple[int, int]:
        current, _expiry, previous_raw = replies
        return int(current), int(previous_raw or 0)

    def _estimate(self, current: int, previous: int) -> float:
        duration = float(self.duration)
        elapsed = self._now - self._window * duration
        return previous * (1 - elapsed / duration) + current

    def counts_fit(self, current: int, previous: int) -> bool:
        return self._estimate(current, previous) <= self.num_requests

    def allow_request(self, request: Any, view: Any) -> bool:
        keys = self.window_keys(request, view)
        if keys is None:
            return True
        current_key = keys[0]
        client = self.cache._cache.get_client(current_key, write=True)  # type: ignore[attr-defined]
        counted = precounted_for(request).pop(current_key, None)
        if counted is None:
            pipe = client.pipeline(transaction=False)
            self.count_commands(pipe, keys)
            current, previous = self.counts_of(pipe.execute())
        else:
            current, previous = counted
        if self.counts_fit(current, previous):
            return True
        client.decr(current_key)  # a refused request does not count, as in DRF
        duration = float(self.duration)
        self._wait = sliding_window_wait(
            limit=int(self.num_requests),
            duration=duration,
            elapsed=self._now - self._window * duration,
            previous=previous,
            current=current - 1,
        )
        return False

    def wait(self) -> float:
        return float(max(1, math.ceil(getattr(self, "_wait", self.duration))))


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle, _SlidingWindow):
    pass


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle, _SlidingWindow):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle, _SlidingWindow):
    def window_keys(self, request: Any, view: Any) -> tuple[str, str] | None:
        if getattr(self, "scope", None) is None:  # outside allow_request: DRF sets the view's scope there
            self.scope = getattr(view, self.scope_attr, None)
            if not self.scope:
                return None
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)  # type: ignore[assignment]
        return super().window_keys(request, view)
