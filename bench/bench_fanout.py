"""The beat cycle's fan-out at scale: `.venv/bin/python bench/bench_fanout.py [--accounts 10000]`.

One command: a throw-away PostgreSQL database (BENCH_DATABASE_NAME, default `bench_mt5guard_fanout`, dropped at the
end) with N active trading accounts, then the real `pipeline.tasks.accounts_sync_cycle` (the cycle row, the recount
of earlier cycles, the account ids, the batched publish of one `account_sync` message per account to the broker)
onto a private queue of the broker in TEST_REDIS_URL (emptied at the end), timed end to end and for the publish alone.
Then the queue is drained as fast as a consumer can take it (one RPOP each, as a worker takes them), to print the queue
lag each message would report (receive time - `dispatched_at`) with no sync work in the way: the lag the fan-out
itself adds. With W worker processes of R syncs/s each, the last account of a cycle waits about N / (W x R) on top.
The one-message-per-account publish (what the cycle did before, `apply_async` per account) is timed on the same
accounts for comparison (`--compare-accounts`, default 2000, then scaled).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "bench_mt5guard_fanout")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

QUEUE = "bench-sync-fanout"
settings.CACHES["default"]["KEY_PREFIX"] = "bench-fanout"
settings.RECONCILIATION_SYNC_QUEUE = QUEUE


def _accounts(count: int) -> None:
    from accounts.models import Role, TradingAccount
    from accounts.services import trading_account_create, user_create

    owner = user_create(username="bench-fanout", password="bench-password-1", role=Role.TRADER)  # noqa: S106
    template = trading_account_create(owner=owner, login=9_000_000, server="Bench-Fanout")
    TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                owner=owner, login=9_000_001 + index, server="Bench-Fanout", backend=template.backend
            )
            for index in range(count - 1)
        ],
        batch_size=2000,
    )


def _drain(broker, expected: int) -> list[float]:
    """Lags (s) of every message as a consumer receives them, in order."""
    import base64

    lags = []
    while len(lags) < expected:
        payload = broker.rpop(QUEUE)
        if payload is None:
            break
        received = time.time()
        message = json.loads(payload)
        body = json.loads(base64.b64decode(message["body"]))
        lags.append(received - body[1]["dispatched_at"])
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--compare-accounts", type=int, default=2000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import redis
    from celery import current_app
    from django.utils import timezone

    from pipeline import tasks
    from reconciliation.models import SyncCycle
    from reconciliation.services import sync_cycle_count, sync_cycles_recount

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    load_before = os.getloadavg()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        broker.delete(QUEUE)
        _accounts(args.accounts)
        published = {}
        real_fanout = tasks.task_fanout

        def timed_fanout(*a, **kw):
            started = time.perf_counter()
            count = real_fanout(*a, **kw)
            published["seconds"] = time.perf_counter() - started
            return count

        tasks.task_fanout = timed_fanout
        started = time.perf_counter()
        cycle_id = tasks.accounts_sync_cycle()
        cycle_seconds = time.perf_counter() - started
        tasks.task_fanout = real_fanout
        queued = broker.llen(QUEUE)
        lags = _drain(broker, queued)
        # What the cycle row records of them (each worker reports its message's lag after its sync, as here after
        # the drain, so the reports are not in the figures above): the mean and the longest.
        for lag in lags:
            sync_cycle_count(cycle_id=cycle_id, status="synced", queue_lag_seconds=lag)
        sync_cycles_recount(now=timezone.now())
        cycle = SyncCycle.objects.get(pk=cycle_id)

        # Before: one apply_async per account through one producer.
        ids = list(range(args.compare_accounts))
        started = time.perf_counter()
        with current_app.producer_or_acquire() as producer:
            for account_id in ids:
                tasks.account_sync.apply_async(
                    args=[account_id],
                    kwargs={"cycle_id": cycle_id, "dispatched_at": time.time()},
                    expires=9,
                    queue=QUEUE,
                    producer=producer,
                )
        one_by_one = time.perf_counter() - started
        broker.delete(QUEUE)
    finally:
        broker.delete(QUEUE)
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    load_after = os.getloadavg()

    lags.sort()
    print(
        f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print()
    print("| fan-out of one cycle | accounts | seconds | messages/s |")
    print("|---|---:|---:|---:|")
    print(
        f"| the whole beat task (cycle row, recount, ids, publish) | {cycle.accounts} | {cycle_seconds:.3f} | - |"
    )
    print(
        f"| publish, batched (core.fanout) | {queued} | {published['seconds']:.3f} "
        f"| {queued / published['seconds']:,.0f} |"
    )
    rate = len(ids) / one_by_one
    print(
        f"| publish, one apply_async per account (before) | {len(ids)} (→ {args.accounts}: "
        f"{args.accounts / rate:.1f} s) | {one_by_one:.3f} | {rate:,.0f} |"
    )
    print()
    print("| queue lag the fan-out adds (drained by one consumer) | p50 s | p99 s | max s |")
    print("|---|---:|---:|---:|")
    print(
        f"| {len(lags)} messages | {statistics.median(lags):.3f} | {lags[int(len(lags) * 0.99) - 1]:.3f} "
        f"| {lags[-1]:.3f} |"
    )
    print(
        f"| recorded on the cycle (SyncCycle: queue_lag_seconds, queue_lag_max_seconds) | mean "
        f"{cycle.queue_lag_seconds} | - | {cycle.queue_lag_max_seconds} |"
    )
    print(
        f"cycle {cycle_id}: started {cycle.started_at:%H:%M:%S.%f}, dispatched {cycle.dispatched_at:%H:%M:%S.%f}"
    )


if __name__ == "__main__":
    main()
