"""DRF's throttles on the shared cache, failing open: with Redis down a request is served (and the outage logged
once), never answered with a 500 — the read cache falls back to the database the same way (core/readcache.py)."""

import logging
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


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle):
    pass
