"""Scale-out: two separate `celery worker` processes on one beat sync every account exactly once per cycle, and the
accounts of a worker killed mid-cycle are synced again by the next cycle (docs/DEPLOY.md)."""

import re
import signal
import time

import pytest

from chaos.harness import Stack, report, timed_wait, wait_for
from chaos.test_services import ONE_CYCLE, SYNC_INTERVAL, _every_account_synced_after

EXTRA_ACCOUNTS = 36  # + the 4 demo accounts: 40, ten per worker process

_CREATE_ACCOUNTS = """
from accounts.models import GatewayBackend, User
from accounts.services import trading_account_create
owner = User.objects.get(username="trader")
for index in range({count}):
    trading_account_create(owner=owner, login=7_200_000 + index, server="SimBroker-Demo",
                           backend=GatewayBackend.BRIDGE, label=f"scale-out {{index}}")
"""


def _succeeded(log: str) -> int:
    return len(re.findall(r"Task pipeline\.tasks\.account_sync\[[^\]]+\] succeeded", log))


def _cycles_after(stack: Stack, since_id: int) -> list[tuple[int, int, int, int, int]]:
    """Cycles dispatched after the sync `since_id`, but the newest one (maybe still running): id, accounts,
    synced, failed, skipped, as the later cycles recounted them."""
    rows = stack.postgres.sql(
        """SELECT id, accounts, synced, failed, skipped FROM reconciliation_synccycle
           WHERE NOT missed AND started_at > (SELECT started_at FROM reconciliation_accountsync WHERE id = %s)
           ORDER BY id""",
        (since_id,),
    )
    return rows[:-1]


@pytest.mark.chaos
def test_two_workers_sync_every_account_once_per_cycle_and_cover_a_killed_one(stack: Stack) -> None:
    stack.manage("shell", "-c", _CREATE_ACCOUNTS.format(count=EXTRA_ACCOUNTS))
    stack.start_extra("worker", "worker-2")
    accounts = stack.active_account_ids()
    assert len(accounts) == EXTRA_ACCOUNTS + 4
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=90, what="a first sync of every account")
    mark = stack.last_sync_id()
    time.sleep(4 * SYNC_INTERVAL)

    # Exactly once: one run per account and cycle (no double sync), and every account of every finished cycle
    # synced (none skipped; a skip would be counted on the cycle).
    per_cycle = stack.postgres.sql(
        """SELECT cycle_id, account_id, count(*) FROM reconciliation_accountsync
           WHERE id > %s AND cycle_id IS NOT NULL GROUP BY cycle_id, account_id""",
        (mark,),
    )
    assert [row for row in per_cycle if row[2] != 1] == []
    cycles = _cycles_after(stack, mark)
    assert len(cycles) >= 2, cycles
    for cycle_id, dispatched, _synced, _failed, _skipped in cycles:
        synced = {account for cycle, account, _count in per_cycle if cycle == cycle_id}
        assert dispatched == len(accounts)
        assert synced == accounts, f"cycle {cycle_id}: not synced {sorted(accounts - synced)}"
    # Both workers took their share.
    first, second = _succeeded(stack.log("worker")), _succeeded(stack.log("worker-2"))
    assert first > 0, stack.log("worker")[-3000:]
    assert second > 0, stack.log("worker-2")[-3000:]

    # A worker killed in the middle of syncs: its syncs never committed, its locks die within one lock lifetime,
    # and the next cycle syncs every account on the other worker.
    terminals = [stack.terminal(login) for login in stack.demo_logins()]
    for terminal in terminals:
        terminal.sim_set_latency("positions_get", 2.0)
    time.sleep(SYNC_INTERVAL / 2)
    stack.kill("worker-2", signal.SIGKILL)
    for terminal in terminals:  # (a terminal busy in a slow call answers the bridge late: try again)
        wait_for(
            lambda t=terminal: t.sim_set_latency("positions_get", 0.0) or True, timeout=30, what="latency off"
        )
    killed = stack.last_sync_id()
    recovery = (
        timed_wait(  # the dead worker's locks live up to 10 s (one lock lifetime), then a cycle takes them
            lambda: _every_account_synced_after(stack, killed),
            timeout=ONE_CYCLE + 2 * SYNC_INTERVAL,
            what="syncs after the kill",
        )
    )
    assert stack.alive("worker")
    report(
        "two_workers",
        accounts=len(accounts),
        cycles_checked=len(cycles),
        syncs_worker_1=first,
        syncs_worker_2=second,
        recovery_after_kill_seconds=recovery,
    )
