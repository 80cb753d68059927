"""Faults of our own processes: a worker killed mid-sync, two beats at once."""

import signal
import time

import pytest

from chaos.harness import Stack, report, timed_wait, wait_for
from chaos.test_services import ONE_CYCLE, SYNC_INTERVAL, _every_account_synced_after


@pytest.mark.chaos
def test_worker_sigkilled_mid_cycle_its_accounts_sync_again_within_one_cycle(stack: Stack) -> None:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    # Slow the terminals so the kill lands in the middle of syncs: locks held, tasks not acknowledged.
    terminals = [stack.terminal(login) for login in stack.demo_logins()]
    for terminal in terminals:
        terminal.sim_set_latency("positions_get", 8.0)
    time.sleep(SYNC_INTERVAL + 2)  # a cycle's syncs are inside positions_get now
    stack.kill("worker", signal.SIGKILL)
    for terminal in terminals:
        terminal.sim_set_latency("positions_get", 0.0)
    mark = stack.last_sync_id()
    stack.start("worker")
    # The dead worker's locks die with it (one lock lifetime, 10 s), so the next cycles sync every account; with a
    # lock that outlives the sync's time limit (45 s) they were skipped for four cycles.
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark), timeout=ONE_CYCLE, what="syncs after the kill"
    )
    assert "was orphaned" in stack.log("worker")
    report("worker_sigkill_mid_sync", recovery_seconds=recovery)


@pytest.mark.chaos
def test_two_beats_at_once_never_sync_an_account_twice_at_the_same_time(stack: Stack) -> None:
    stack.start_extra("beat", "beat-2")
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    time.sleep(25)
    overlapping = stack.postgres.sql(
        """SELECT a.id, b.id FROM reconciliation_accountsync a JOIN reconciliation_accountsync b
           ON a.account_id = b.account_id AND a.id < b.id
           AND a.started_at < b.finished_at AND b.started_at < a.finished_at"""
    )
    assert overlapping == []
    duplicated = stack.postgres.sql(
        """SELECT fingerprint, count(*) FROM reconciliation_reconciliationevent
           WHERE state <> 'resolved' GROUP BY account_id, fingerprint HAVING count(*) > 1"""
    )
    assert duplicated == []
    syncs = stack.postgres.sql("SELECT count(*) FROM reconciliation_accountsync")[0][0]
    report("two_beats", overlapping_syncs=0, duplicated_events=0, syncs=syncs)
