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


class _SlidingWindow(throttling.SimpleRateThrottle):
    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        duration = float(self.duration)
        window = int(now // duration)
        current_key = self.cache.make_and_validate_key(f"{self.key}:{window}")
        previous_key = self.cache.make_and_validate_key(f"{self.key}:{window - 1}")
        client = self.cache._cache.get_client(current_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(current_key)
        pipe.expire(current_key, int(duration * 2) + 1)
        pipe.get(previous_key)
        current, _expiry, previous_raw = pipe.execute()
        previous = int(previous_raw or 0)
        elapsed = now - window * duration
        estimate = previous * (1 - elapsed / duration) + current
        if estimate <= self.num_requests:
            return True
        client.decr(current_key)  # a refused request does not count, as in DRF
        self._wait = sliding_window_wait(
            limit=int(self.num_requests),
            duration=duration,
            elapsed=elapsed,
            previous=previous,
            current=current - 1,
        )
        return False

    def wait(self) -> float:
        return max(1.0, math.ceil(getattr(self, "_wait", self.duration)))


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle, _SlidingWindow):
    pass


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle, _SlidingWindow):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle, _SlidingWindow):
    pass
