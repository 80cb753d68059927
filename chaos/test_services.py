"""Faults of the services every process shares: PostgreSQL and Redis."""

import time

import pytest
import redis

from chaos.harness import Stack, report, timed_wait, wait_for
from reconciliation.conf import DEFAULTS

SYNC_INTERVAL = 10  # seconds: the beat interval setup_periodic_tasks declares
ONE_CYCLE = SYNC_INTERVAL + 15  # a cycle, plus start-up of the next sync and the reconnects


def _every_account_synced_after(stack: Stack, since_id: int) -> bool:
    ok = {account for _, account, ok in stack.syncs_since(since_id) if ok}
    return stack.active_account_ids() <= ok


@pytest.mark.chaos
def test_stack_syncs_every_demo_account(stack: Stack) -> None:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")


@pytest.mark.chaos
def test_postgres_down_30s_every_account_syncs_again_within_one_cycle(stack: Stack) -> None:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    stack.postgres.stop("immediate")
    time.sleep(30)
    stack.postgres.start()
    mark = stack.last_sync_id()
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark), timeout=ONE_CYCLE, what="syncs after the outage"
    )
    report("postgres_down_30s", recovery_seconds=recovery)
    for name in ("bridge", "worker", "beat"):
        assert stack.alive(name), f"{name} died during the outage:\n{stack.log(name)[-3000:]}"


def _cycle_stats(stack: Stack) -> dict[int, tuple[int, int, int]]:
    rows = stack.postgres.sql(
        "SELECT id, synced, failed, skipped FROM reconciliation_synccycle WHERE closed AND NOT missed"
    )
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.mark.chaos
def test_redis_down_30s_nothing_dies_statistics_stay_and_the_gap_is_recorded(stack: Stack) -> None:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    wait_for(
        lambda: any(sum(v) for v in _cycle_stats(stack).values()),
        timeout=90,
        what="a final cycle with counts",
    )
    before = _cycle_stats(stack)
    stack.redis.kill()
    time.sleep(30)
    stack.redis.start()  # comes back empty: no persistence, like the machine's
    mark = stack.last_sync_id()
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark),
        timeout=ONE_CYCLE + 20,
        what="syncs after the outage",
    )
    for name in ("bridge", "worker", "beat"):
        assert stack.alive(name), f"{name} died during the outage:\n{stack.log(name)[-3000:]}"
    after = _cycle_stats(stack)
    assert {cycle: after[cycle] for cycle in before} == before  # finished cycles keep their counts
    wait_for(
        lambda: stack.postgres.sql("SELECT count(*) FROM reconciliation_synccycle WHERE missed")[0][0] >= 1,
        timeout=ONE_CYCLE,
        what="the missed cycles on record",
    )
    missed = stack.postgres.sql(
        "SELECT coalesce(sum(missed_cycles), 0) FROM reconciliation_synccycle WHERE missed"
    )
    report(
        "redis_down_30s",
        recovery_seconds=recovery,
        finished_cycles_kept=len(before),
        missed_cycles=missed[0][0],
    )


SYNC_TIME_LIMIT = DEFAULTS["RECONCILIATION_SYNC_TIME_LIMIT"]  # the hard one; the soft one is shorter


def _syncs_in_flight(stack: Stack) -> int:
    """Accounts whose sync lock is held right now (pipeline.services.scheduling): syncs running in a worker."""
    client = redis.Redis.from_url(stack.redis.url, socket_timeout=2)
    try:
        return len(client.keys("*pipeline:sync-lock:account:*"))
    finally:
        client.close()


@pytest.mark.chaos
def test_redis_down_longer_than_a_syncs_time_limit_with_syncs_in_flight_the_worker_lives(
    stack: Stack,
) -> None:
    """Late-acknowledged syncs in flight when the broker goes, and an outage longer than their time limits: the
    worker must come back on its own. On Celery 5.7.0 it died here ("Unrecoverable error", AttributeError while
    restoring the unacknowledged messages, or UnpicklingError reading a pool process's result pipe), and every sync
    stopped until someone restarted it (requirements.txt pins 5.6.3). Slow terminals keep syncs in flight."""
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    terminals = [stack.terminal(login) for login in stack.demo_logins()]
    for terminal in terminals:
        terminal.sim_set_latency("positions_get", 3.0)
    wait_for(lambda: _syncs_in_flight(stack) >= 1, timeout=ONE_CYCLE, what="a sync in flight")
    stack.redis.kill()
    time.sleep(SYNC_TIME_LIMIT + 5)
    for terminal in terminals:
        terminal.sim_set_latency("positions_get", 0.0)
    stack.redis.start()
    mark = stack.last_sync_id()
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark), timeout=ONE_CYCLE, what="syncs after the outage"
    )
    for name in ("bridge", "worker", "beat"):
        assert stack.alive(name), f"{name} died during the outage:\n{stack.log(name)[-3000:]}"
    assert "Unrecoverable error" not in stack.log("worker")
    report("redis_down_45s_syncs_in_flight", recovery_seconds=recovery)


ORPHAN_SNAPSHOTS = """SELECT s.id FROM accounts_accountsnapshot s
    LEFT JOIN reconciliation_accountsync r ON r.account_id = s.account_id AND r.started_at = s.taken_at AND r.ok
    WHERE s.source = 'terminal' AND r.id IS NULL"""


@pytest.mark.chaos
def test_postgres_dies_inside_a_syncs_transaction_nothing_half_written_and_every_account_syncs_again(
    stack: Stack,
) -> None:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    # Hold the sync's last write (its run record) so the next syncs stop inside their transactions, snapshot and
    # reconciliation already written, then kill the database under them.
    blocker = stack.postgres.connect()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute("LOCK TABLE reconciliation_accountsync IN SHARE MODE")
    waiting = wait_for(
        lambda: stack.postgres.sql(
            # Waiting on our lock (the only one held): a sync at its run record's write. (The statement text is
            # not matched: the last statement of a sync batches several writes, beyond pg_stat_activity's 1 kB.)
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'mt5guard'"
        )[0][0],
        timeout=30,
        what="syncs stopped inside their transactions",
    )
    stack.postgres.stop("immediate")
    blocker.close()
    time.sleep(20)
    stack.postgres.start()
    mark = stack.last_sync_id()
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark), timeout=ONE_CYCLE, what="syncs after the outage"
    )
    assert stack.postgres.sql("SELECT count(*) FROM accounts_accountsnapshot")[0][0] > 0
    assert stack.postgres.sql(ORPHAN_SNAPSHOTS) == []  # no snapshot without its run: nothing half-written
    for name in ("bridge", "worker", "beat"):
        assert stack.alive(name), f"{name} died during the outage:\n{stack.log(name)[-3000:]}"
    report("postgres_down_mid_sync_transaction", recovery_seconds=recovery, syncs_cut=waiting, half_written=0)
