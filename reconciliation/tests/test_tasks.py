"""The periodic sync: fan-out, per-account lock (overlap), counters, retries, restarts (no duplicates)."""

import base64
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import AccountStatus
from pipeline import tasks
from pipeline.services import account_lock_acquire, account_lock_release, account_sync, account_sync_scheduled
from pipeline.services import sync as sync_module
from pipeline.services.scheduling import account_lock_key, lock_client
from reconciliation.models import AccountSync, LivePosition, ReconciliationEvent, SyncCycle
from reconciliation.services import sync as reconciliation_sync
from reconciliation.services import sync_cycle_count, sync_cycle_run, sync_cycles_recount

pytestmark = pytest.mark.django_db


@pytest.fixture
def use_sims(sim_accounts, monkeypatch):
    monkeypatch.setattr("pipeline.services.scheduling.trading_account_gateway", sim_accounts.gateway_for)
    return sim_accounts


@pytest.fixture(autouse=True)
def _no_cycle_lock():
    cache.delete("recon:lock:cycle")


def _counters(cycle_id):
    """The cycle's statistics as the status pages show them (recounted from the durable records)."""
    sync_cycles_recount(now=timezone.now())
    cycle = SyncCycle.objects.get(pk=cycle_id)
    return {"synced": cycle.synced, "failed": cycle.failed, "skipped": cycle.skipped}


def test_cycle_fans_out_one_sync_per_active_account_expiring_before_the_next(use_sims):
    active = [use_sims.make().account for _ in range(3)]
    paused = use_sims.make().account
    paused.status = AccountStatus.PAUSED
    paused.save(update_fields=["status"])
    sent = []

    cycle = sync_cycle_run(dispatch=lambda **kwargs: sent.append(kwargs))

    (batch,) = sent  # one batched dispatch
    assert batch["account_ids"] == [a.pk for a in active]
    assert batch["cycle_id"] == cycle.pk
    assert 0 < batch["expires"] < cycle.interval_seconds
    assert cycle.accounts == 3
    assert cycle.interval_seconds == 10


def test_accounts_sync_cycle_task_queues_account_syncs_with_expiry(use_sims, settings):
    accounts = [use_sims.make().account for _ in range(3)]
    settings.RECONCILIATION_SYNC_QUEUE = "test-sync-fanout"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("test-sync-fanout")
    try:
        cycle_id = tasks.accounts_sync_cycle()
        messages = [
            json.loads(broker.rpop("test-sync-fanout")) for _ in range(broker.llen("test-sync-fanout"))
        ]
    finally:
        broker.delete("test-sync-fanout")

    assert len(messages) == 3
    bodies = [json.loads(base64.b64decode(m["body"])) for m in messages]
    assert [body[0] for body in bodies] == [[a.pk] for a in accounts]  # consumed in the order dispatched
    assert {body[1]["cycle_id"] for body in bodies} == {cycle_id}
    assert all(m["headers"]["task"] == "pipeline.tasks.account_sync" for m in messages)
    assert all(m["properties"]["expiration"] == "9000" for m in messages)  # expires before the next cycle
    assert len({m["headers"]["id"] for m in messages}) == 3
    assert tasks.account_sync.acks_late
    assert tasks.account_sync.reject_on_worker_lost


def test_a_cycle_records_the_mean_and_the_longest_queue_lag(db):
    start = timezone.now()
    cycle = sync_cycle_run(dispatch=lambda **kwargs: None, now=start)
    for lag in (0.5, 2.25, 1.0):
        sync_cycle_count(cycle_id=cycle.pk, status="synced", queue_lag_seconds=lag)
    sync_cycle_count(cycle_id=cycle.pk, status="skipped")  # no lag reported (a retry): not counted in either

    sync_cycles_recount(now=start + timedelta(seconds=10))
    cycle.refresh_from_db()
    assert cycle.queue_lag_seconds == Decimal("1.250")
    assert cycle.queue_lag_max_seconds == Decimal("2.250")

    cache.clear()  # Redis lost the counters: late reports go nowhere, the stored figures stay
    sync_cycle_count(cycle_id=cycle.pk, status="synced", queue_lag_seconds=9.0)
    sync_cycles_recount(now=start + timedelta(seconds=20))
    cycle.refresh_from_db()
    assert (cycle.queue_lag_seconds, cycle.queue_lag_max_seconds) == (Decimal("1.250"), Decimal("2.250"))


def test_cycle_counts_synced_failed_and_skipped_and_records_status(use_sims):
    _ok, broken, busy = use_sims.make(), use_sims.make(), use_sims.make()
    broken.terminal.sim_inject_fault("account_info", times=5)
    start = timezone.now()
    sent = []
    cycle = sync_cycle_run(
        dispatch=lambda **kwargs: sent.extend({**kwargs, "account_id": a} for a in kwargs["account_ids"]),
        now=start,
    )
    account_lock_acquire(account_id=busy.account.pk)  # a slow sync of `busy` is still running

    statuses = [
        tasks.account_sync(s["account_id"], cycle_id=s["cycle_id"], dispatched_at=time.time()) for s in sent
    ]

    assert statuses == ["synced", "failed", "skipped"]
    # The next cycles count the durable records into the row; it is final once older than the lock lifetime.
    sync_cycle_run(dispatch=lambda **kwargs: None, now=start + timedelta(seconds=12))
    cycle.refresh_from_db()
    assert (cycle.synced, cycle.failed, cycle.skipped, cycle.closed) == (1, 1, 1, False)
    assert cycle.finished_at is not None
    assert cycle.queue_lag_seconds is not None
    assert cycle.queue_lag_max_seconds >= cycle.queue_lag_seconds
    lag, lag_max = cycle.queue_lag_seconds, cycle.queue_lag_max_seconds
    cache.clear()  # Redis restarted without persistence: the statistics must not turn into zeros
    later = sync_cycle_run(dispatch=lambda **kwargs: None, now=start + timedelta(seconds=60))
    cycle.refresh_from_db()
    assert (cycle.synced, cycle.failed, cycle.skipped, cycle.queue_lag_seconds) == (1, 1, 1, lag)
    assert cycle.queue_lag_max_seconds == lag_max
    assert cycle.closed
    assert later.lag_seconds > 0  # started 48 s after the previous cycle, which was due 10 s after it
    # ... and the cycles that should have run in between are on record as missed.
    missed = SyncCycle.objects.get(missed=True)
    assert missed.missed_cycles == 3
    assert missed.started_at == start + timedelta(seconds=22)


def test_cycles_that_never_ran_are_recorded_once_as_missed(use_sims):
    start = timezone.now()
    sync_cycle_run(dispatch=lambda **kwargs: None, now=start)
    sync_cycle_run(
        dispatch=lambda **kwargs: None, now=start + timedelta(seconds=10.5)
    )  # on time: nothing missed
    assert not SyncCycle.objects.filter(missed=True).exists()
    sync_cycle_run(dispatch=lambda **kwargs: None, now=start + timedelta(seconds=41))  # two slots skipped
    assert list(SyncCycle.objects.filter(missed=True).values_list("missed_cycles", flat=True)) == [2]


def test_one_accounts_failure_never_stops_the_others(use_sims, monkeypatch):
    first, second = use_sims.make(), use_sims.make()
    first.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    second.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    real_sync = sync_module.account_sync

    def exploding(*, account, **kwargs):
        if account.pk == first.account.pk:
            raise RuntimeError("bug in one account's data")
        return real_sync(account=account, **kwargs)

    monkeypatch.setattr("pipeline.services.scheduling.account_sync", exploding)
    with pytest.raises(RuntimeError):
        tasks.account_sync(first.account.pk)
    assert tasks.account_sync(second.account.pk) == "synced"
    assert lock_client().get(account_lock_key(first.account.pk)) is None  # released despite the error


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_overlap_a_slow_account_is_never_synced_twice_at_once(use_sims):
    slow = use_sims.make()
    slow.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    slow.terminal.sim_set_latency("positions_get", 0.6)
    outcomes = {}

    def first_run():
        try:
            outcomes["first"] = account_sync_scheduled(account_id=slow.account.pk).status
        finally:
            connection.close()

    runner = threading.Thread(target=first_run)
    runner.start()
    deadline = time.monotonic() + 5
    while lock_client().get(account_lock_key(slow.account.pk)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second = tasks.account_sync(slow.account.pk, cycle_id=None)
    runner.join()

    assert second == "skipped"
    assert outcomes["first"] == "synced"
    assert AccountSync.objects.filter(account=slow.account).count() == 1


def test_overlap_second_run_during_a_slow_terminal_call_is_skipped_and_counted(use_sims):
    # The terminal's latency hook starts the next cycle's run of the same account while the first run is inside
    # its slow positions_get: deterministic overlap, one thread.
    during = {}
    holder = {}

    def slow_call(seconds):
        during["status"] = tasks.account_sync(holder["account_id"], cycle_id=holder["cycle_id"])

    slow = use_sims.make(sleep=slow_call)
    holder["account_id"] = slow.account.pk
    slow.terminal.sim_set_latency("positions_get", 5)
    cycle = sync_cycle_run(dispatch=lambda **kwargs: None)
    holder["cycle_id"] = cycle.pk

    first = tasks.account_sync(slow.account.pk, cycle_id=cycle.pk)

    assert (first, during["status"]) == ("synced", "skipped")
    assert _counters(cycle.pk) == {"synced": 1, "failed": 0, "skipped": 1}
    assert AccountSync.objects.filter(account=slow.account).count() == 1


def test_restart_crash_mid_sync_leaves_nothing_half_done_and_no_duplicates(use_sims, monkeypatch):
    sim = use_sims.make()
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    start = timezone.now()
    assert account_sync(account=sim.account, gateway=sim.gateway, now=start).ok
    sim.terminal.sim_open_manual("GBPUSD", "sell", "0.2")  # a second unmatched position appears
    real_apply = reconciliation_sync.events_apply

    def killed_after_events(**kwargs):
        real_apply(**kwargs)  # events written...
        raise SystemExit("worker killed")  # ...then the process dies before the transaction commits

    monkeypatch.setattr(reconciliation_sync, "events_apply", killed_after_events)
    with pytest.raises(SystemExit):
        account_sync(account=sim.account, gateway=sim.gateway, now=start + timedelta(seconds=10))
    assert ReconciliationEvent.objects.filter(account=sim.account).count() == 1
    assert LivePosition.objects.filter(account=sim.account).count() == 1

    monkeypatch.setattr(reconciliation_sync, "events_apply", real_apply)
    # The re-queued task (acks_late) and the next cycle both run the sync again.
    for seconds in (10, 10, 20):
        assert account_sync(
            account=sim.account, gateway=sim.gateway, now=start + timedelta(seconds=seconds)
        ).ok

    events = ReconciliationEvent.objects.filter(account=sim.account, kind="unmatched_position")
    assert events.count() == 2
    assert len({e.fingerprint for e in events}) == 2
    assert LivePosition.objects.filter(account=sim.account).count() == 2


def test_restart_lock_of_a_killed_worker_skips_until_it_expires_then_syncs_without_duplicates(use_sims):
    sim = use_sims.make()
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    assert tasks.account_sync(sim.account.pk) == "synced"
    account_lock_acquire(account_id=sim.account.pk)  # the killed worker's lock, still alive

    assert tasks.account_sync(sim.account.pk) == "skipped"  # the re-delivered message
    lock_client().delete(account_lock_key(sim.account.pk))  # the lock's lifetime ends
    assert tasks.account_sync(sim.account.pk) == "synced"
    assert ReconciliationEvent.objects.filter(account=sim.account).count() == 1


def test_a_sync_that_outlived_its_lock_never_releases_the_next_holders_lock(use_sims):
    """The lock expired while a slow sync ran and the next sync took it: the slow sync's release (an atomic
    compare-and-delete) leaves the new holder's lock in place, so a third sync is still kept out."""
    account_id = use_sims.make().account.pk
    slow_token = account_lock_acquire(account_id=account_id)
    assert slow_token is not None
    lock_client().delete(account_lock_key(account_id))  # the slow sync's lock expires...
    next_token = account_lock_acquire(account_id=account_id)  # ...and the next sync takes it
    assert next_token is not None

    assert account_lock_release(account_id=account_id, token=slow_token) is False
    assert lock_client().get(account_lock_key(account_id)) == next_token.encode()
    assert tasks.account_sync(account_id) == "skipped"
    assert account_lock_release(account_id=account_id, token=next_token) is True
    assert tasks.account_sync(account_id) == "synced"


def test_the_lock_lives_for_the_configured_time(use_sims):
    account_id = use_sims.make().account.pk
    account_lock_acquire(account_id=account_id)
    assert 0 < lock_client().ttl(account_lock_key(account_id)) <= 45


def test_database_refuses_a_second_active_event_for_one_fingerprint(use_sims):
    sim = use_sims.make()
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.1")
    account_sync(account=sim.account, gateway=sim.gateway)
    event = ReconciliationEvent.objects.get(account=sim.account)
    event.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        event.save()


def test_link_failure_is_retried_once_then_counted(use_sims, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    sim = use_sims.make()
    sim.terminal.sim_inject_fault("account_info", times=1)
    cycle = sync_cycle_run(dispatch=lambda **kwargs: None)

    result = tasks.account_sync.apply(args=[sim.account.pk], kwargs={"cycle_id": cycle.pk})

    assert result.get() == "synced"
    assert _counters(cycle.pk) == {"synced": 1, "failed": 0, "skipped": 0}
    assert list(AccountSync.objects.filter(account=sim.account).values_list("ok", flat=True)) == [True, False]


def test_open_circuit_is_not_retried(use_sims):
    sim = use_sims.make()
    sim.terminal.sim_inject_fault("account_info", times=10)
    for _ in range(3):
        tasks.account_sync(sim.account.pk)
    cycle = sync_cycle_run(dispatch=lambda **kwargs: None)
    result = tasks.account_sync.apply(args=[sim.account.pk], kwargs={"cycle_id": cycle.pk})
    assert result.get() == "failed"
    assert AccountSync.objects.filter(account=sim.account).first().error_class == "GatewayCircuitOpen"


def test_old_runs_and_cycles_are_pruned(use_sims, settings):
    settings.RECONCILIATION_RUN_RETENTION_HOURS = 1
    sim = use_sims.make()
    old = timezone.now() - timedelta(hours=2)
    account_sync(account=sim.account, gateway=sim.gateway, now=old)
    SyncCycle.objects.create(started_at=old, interval_seconds=10)
    sync_cycle_run(dispatch=lambda **kwargs: None)
    assert not AccountSync.objects.filter(started_at=old).exists()
    assert not SyncCycle.objects.filter(started_at=old).exists()


@pytest.fixture
def default_sim():
    from integrations.mt5 import reset_gateways
    from integrations.mt5.simulated import default_registry

    reset_gateways()
    made = []

    def make(account):
        made.append((account.login, account.server))
        return default_registry().get_or_create(account.login, server=account.server, password=None)

    yield make
    for login, server in made:
        default_registry().remove(login, server)
    reset_gateways()


def test_task_syncs_through_the_real_gateway_selection(default_sim):
    from accounts.tests.factories import TradingAccountFactory

    account = TradingAccountFactory()
    cache.delete(f"recon:lock:account:{account.pk}")
    terminal = default_sim(account)
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.1")

    assert tasks.account_sync(account.pk) == "synced"
    assert list(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == [ticket]


def test_a_lock_whose_worker_died_expires_within_its_ttl_and_is_reported_orphaned(use_sims, settings, caplog):
    settings.RECONCILIATION_LOCK_TTL_SECONDS = 0.4
    sim = use_sims.make()
    assert (
        account_lock_acquire(account_id=sim.account.pk) is not None
    )  # its worker is SIGKILLed: never released
    assert tasks.account_sync(sim.account.pk) == "skipped"
    assert "still holds its lock" in caplog.text
    time.sleep(0.6)
    assert tasks.account_sync(sim.account.pk) == "synced"
    assert "was orphaned" in caplog.text


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_long_sync_keeps_renewing_its_short_lock(use_sims, settings):
    settings.RECONCILIATION_LOCK_TTL_SECONDS = 0.3
    slow = use_sims.make()
    slow.terminal.sim_set_latency("positions_get", 1.2)  # four lock lifetimes
    statuses = {}
    first = threading.Thread(target=lambda: statuses.setdefault("first", tasks.account_sync(slow.account.pk)))
    first.start()
    time.sleep(0.8)  # well past one TTL: only renewal keeps the lock
    statuses["second"] = tasks.account_sync(slow.account.pk)
    first.join(timeout=10)
    assert statuses == {"first": "synced", "second": "skipped"}
    assert lock_client().get(account_lock_key(slow.account.pk)) is None  # released at the end
