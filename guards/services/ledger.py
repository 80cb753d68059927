"""The alert ledger: every GuardAlert gets a sequence number that only grows, in commit order, so a client that
follows `after=<seq>` can never miss one.

Why not the primary key: ids come from a sequence when the row is inserted, not when it commits; a long sync
transaction can commit alert 41 after a client already read 42 and moved on. So alerts are inserted without a
number and `alerts_sequence()` numbers the committed ones afterwards, in one short transaction under a global lock
(a PostgreSQL transaction advisory lock; SQLite serialises writers anyway). Numbering transactions therefore commit
one after the other, each numbering only rows that were already committed, so when a reader sees number n every
number below n is visible too.

It runs after every commit that wrote alerts (alerts_record) and before every ledger read that finds unnumbered
rows, so a process that died between its commit and the numbering delays the numbers but loses nothing.
After numbering, the highest number is published on Redis (ALERTS_CHANNEL) to wake long polls.
"""

import contextlib
import logging
import time

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from redis.exceptions import RedisError

from guards.models import GuardAlert

logger = logging.getLogger(__name__)

SEQUENCE_LOCK_KEY = 0x4D5447_0001  # pg_advisory_xact_lock key of the numbering ("MTG" + 1)
BATCH = 1000
ALERTS_CHANNEL = "mt5guard:alerts"


def alerts_unsequenced_exist() -> bool:
    return GuardAlert.objects.filter(seq__isnull=True).exists()


def alerts_sequence() -> int:
    """Number every committed alert that has no number yet (oldest id first). Returns how many were numbered.
    Call outside a transaction: the numbers must be committed before anyone is told."""
    numbered = 0
    last = None
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCE_LOCK_KEY])
            pending = list(GuardAlert.objects.filter(seq__isnull=True).order_by("pk").only("pk")[:BATCH])
            if not pending:
                break
            last = GuardAlert.objects.aggregate(top=Max("seq"))["top"] or 0
            for alert in pending:
                last += 1
                alert.seq = last
            GuardAlert.objects.bulk_update(pending, ["seq"])
        numbered += len(pending)
        if len(pending) < BATCH:
            break
    if numbered and last is not None:
        alerts_publish(last)
    return numbered


def alerts_sequence_after_commit() -> None:
    transaction.on_commit(_sequence_quietly)


def _sequence_quietly() -> None:
    try:
        alerts_sequence()
    except Exception:  # the next ledger read numbers them; never break the write that made the alerts
        logger.exception("numbering guard alerts failed; readers will number them")


def alerts_publish(top_seq: int) -> None:
    try:
        cache._cache.get_client(write=True).publish(ALERTS_CHANNEL, str(top_seq))  # type: ignore[attr-defined]
    except (RedisError, OSError, AttributeError) as exc:
        logger.debug("alert ledger publish failed (long polls fall back to short polls): %s", exc)


class AlertWaiter:
    """Wakes a long poll when new alerts are numbered: a Redis subscription opened *before* the caller first looks
    at the database (so a publish in between is buffered, not lost). Without Redis it simply sleeps (short polls)."""

    def __init__(self) -> None:
        self._pubsub = None
        try:
            client = cache._cache.get_client(write=False)  # type: ignore[attr-defined]
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(ALERTS_CHANNEL)
            self._pubsub = pubsub
        except (RedisError, OSError, AttributeError) as exc:
            logger.debug("alert ledger: no subscription (short polls): %s", exc)

    def wait(self, timeout: float) -> None:
        if timeout <= 0:
            return
        if self._pubsub is None:
            time.sleep(timeout)
            return
        try:
            self._pubsub.get_message(timeout=timeout)
        except (RedisError, OSError) as exc:
            logger.debug("alert ledger: subscription lost (short polls): %s", exc)
            self.close()
            time.sleep(timeout)

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                self._pubsub.close()
            self._pubsub = None
