"""The Celery worker's consumer, with a short reconnect ladder (CELERY_WORKER_CONSUMER points here).

Celery's consumer retries a lost broker 2, 4, 6 … up to 30 s apart (kombu's defaults; Celery has no setting for
them). After an outage of half a minute the worker could sleep 12 s more once Redis was back, and after a longer one
up to 30 s: every account's sync and guards waiting on a retry timer. Here the retries start after
BROKER_RECONNECT_START_SECONDS and are at most BROKER_RECONNECT_MAX_SECONDS apart. A refused connect costs nothing;
a broker that does not answer costs the connect timeout, which bounds the rate anyway.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery.worker.consumer import Consumer
from django.conf import settings


class BrokerConsumer(Consumer):  # type: ignore[misc]
    def ensure_connected(self, conn: Any) -> Any:
        start = settings.BROKER_RECONNECT_START_SECONDS
        conn.ensure_connection = partial(
            conn.ensure_connection,
            interval_start=start,
            interval_step=start,
            # kombu's ladder runs from interval_start to interval_start + interval_max
            interval_max=max(settings.BROKER_RECONNECT_MAX_SECONDS - start, 0),
        )
        return super().ensure_connected(conn)
