"""Readiness of the whole stack (GET /readyz): each part checked quickly, the failing ones named.

database · Redis (the cache) · the channel layer · beat's last sync cycle not older than READY_CYCLE_INTERVALS
intervals · a Celery worker answering a ping · each bridge server that an active account uses answering its
liveness GET. Every check has a short timeout; none needs a secret or returns one.
"""

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from accounts.models import AccountStatus, GatewayBackend, TradingAccount
from reconciliation.selectors import sync_cycle_latest

CHECK_TIMEOUT_SECONDS = 2.0
READY_CYCLE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


def _timed(name: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # a failing part is reported, never raised
        detail, ok = f"{type(exc).__name__}: {exc}"[:200], False
    return Check(name=name, ok=ok, detail=detail, ms=round((time.perf_counter() - start) * 1000, 1))


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _redis() -> str:
    cache.set("readyz:probe", "1", timeout=5)
    if cache.get("readyz:probe") != "1":
        raise RuntimeError("the cache did not return what was written")
    return "ok"


def _channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    async_to_sync(layer.group_send)("readyz", {"type": "readyz.probe"})  # a group nobody is in
    return "ok"


def _beat() -> str:
    cycle = sync_cycle_latest()
    if cycle is None:
        raise RuntimeError("no sync cycle has run yet")
    age = (timezone.now() - cycle.started_at).total_seconds()
    limit = READY_CYCLE_INTERVALS * settings.RECONCILIATION_SYNC_INTERVAL_SECONDS
    if age > limit:
        raise RuntimeError(f"last sync cycle {age:.0f} s ago (limit {limit} s)")
    return f"last sync cycle {age:.0f} s ago"


def _worker() -> str:
    from config.celery import app

    replies = app.control.ping(timeout=CHECK_TIMEOUT_SECONDS)
    if not replies:
        raise RuntimeError("no Celery worker answered")
    return f"{len(replies)} worker(s)"


def _bridge_urls() -> list[str]:
    urls = set()
    for connection_settings in TradingAccount.objects.filter(
        status=AccountStatus.ACTIVE, backend=GatewayBackend.BRIDGE
    ).values_list("connection", flat=True):
        urls.add((connection_settings or {}).get("bridge_url") or settings.MT5_BRIDGE_URL)
    return sorted(urls)


def _bridge(url: str) -> Callable[[], str]:
    def probe() -> str:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as response:  # noqa: S310 (our config)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
        return "ok"

    return probe


def stack_readiness() -> list[Check]:
    checks = [
        _timed("database", _database),
        _timed("redis", _redis),
        _timed("channel_layer", _channel_layer),
        _timed("beat", _beat),
        _timed("worker", _worker),
    ]
    try:
        urls = _bridge_urls()
    except Exception as exc:  # the database check already says why
        return [*checks, Check(name="bridges", ok=False, detail=type(exc).__name__, ms=0.0)]
    checks.extend(_timed(f"bridge {url}", _bridge(url)) for url in urls)
    return checks


def checks_payload(checks: list[Check]) -> dict[str, Any]:
    failing = [c.name for c in checks if not c.ok]
    return {
        "status": "ready" if not failing else "not ready",
        "failing": failing,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks},
    }
