"""The account-sync pipeline: one reading per sync, no terminal call under the guards' lock, failure isolation."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount
from accounts.tests.factories import TradingAccountFactory
from guards.models import AlertKind, GuardAlert, GuardState
from guards.services import evaluate as evaluate_module
from pipeline.services import account_sync
from pipeline.services import sync as sync_module
from reconciliation.models import AccountSync, LivePosition
from reconciliation.tests.fakes import FakeGateway, position

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    account = TradingAccountFactory()
    return account


@pytest.fixture
def gateway(account) -> FakeGateway:
    return FakeGateway(login=account.login, server=account.server)


def test_the_terminal_is_read_once_per_sync_before_anything_else(account, gateway):
    gateway.open_positions = [position(1), position(2, symbol="GBPUSD")]
    assert account_sync(account=account, gateway=gateway).ok
    gateway.calls.clear()

    assert account_sync(account=account, gateway=gateway, now=timezone.now() + timedelta(seconds=10)).ok

    # account, terminal state, positions, deals, then what the market guard needs of each symbol held (a tick each;
    # spec and closed bars unless cached for the server): nothing more, whatever reconciliation and the guards do.
    assert gateway.calls[:4] == ["account", "terminal", "positions", "deals"]
    assert gateway.calls[4:].count("tick") == 2
    assert set(gateway.calls[4:]) <= {"symbol", "tick", "bars"}


def test_the_guards_make_no_terminal_call_while_they_hold_the_state_lock(account, gateway):
    gateway.open_positions = [position(1)]
    calls_at_lock = []
    real_lock = evaluate_module.guard_state_lock

    def recording_lock(**kwargs):
        calls_at_lock.append(len(gateway.calls))
        return real_lock(**kwargs)

    with mock.patch.object(evaluate_module, "guard_state_lock", recording_lock):
        assert account_sync(account=account, gateway=gateway).ok
    assert calls_at_lock == [len(gateway.calls)]  # every terminal call happened before the lock was taken


def test_a_guard_failure_is_stored_on_the_run_and_raises_an_operator_alert(account, gateway):
    gateway.open_positions = [position(1)]
    start = timezone.now()
    with mock.patch.object(
        sync_module, "account_guards_evaluate", side_effect=RuntimeError("bug in a guard")
    ):
        result = account_sync(account=account, gateway=gateway, now=start)

    assert result.ok  # the snapshot and reconciliation stand
    assert result.guards_error == "RuntimeError: bug in a guard"
    run = AccountSync.objects.get(account=account)
    assert (run.ok, run.guards_error, run.positions) == (True, "RuntimeError: bug in a guard", 1)
    alert = GuardAlert.objects.get(account=account, kind=AlertKind.GUARDS_FAILED)
    assert alert.level == "critical"
    assert "bug in a guard" in alert.message
    # The deals of this reading were not applied: the next sync reads them again.
    account.refresh_from_db()
    assert account.deals_cursor is None
    assert account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10)).ok
    assert TradingAccount.objects.get(pk=account.pk).deals_cursor == start + timedelta(seconds=10)


def test_a_guard_failure_alert_is_pushed_live(account, gateway, django_capture_on_commit_callbacks):
    with (
        mock.patch.object(sync_module, "account_guards_evaluate", side_effect=RuntimeError("boom")),
        mock.patch("guards.services.alerts.broadcast") as pushed,
        django_capture_on_commit_callbacks(execute=True),
    ):
        account_sync(account=account, gateway=gateway)
    assert any(
        call.args[1] == "guard.alert" and call.kwargs["kind"] == "guards_failed" for call in pushed.mock_calls
    )


def test_a_reconciliation_failure_still_moves_the_guards(account, gateway):
    """A symbol the terminal cannot describe: reconciliation fails, drawdown is still evaluated on the reading."""
    gateway.open_positions = [position(1, symbol="NOPE")]
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)
    gateway.balance = Decimal("7000.00")
    for seconds in (10, 20):
        result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=seconds))
        assert result.reconciliation_error.startswith("SymbolNotDescribed")
    state = GuardState.objects.get(account=account)
    assert state.drawdown_percent == Decimal("30.0000")
    assert state.status == "tripped"


def _failing_in_the_database(real):
    """`real`, then a statement the database refuses: the transaction is in error until rolled back."""

    def run(**kwargs):
        result = real(**kwargs)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        return result

    return run


def test_a_database_error_in_reconciliation_writes_keeps_the_snapshot_the_guards_and_the_run(
    account, gateway
):
    gateway.open_positions = [position(1)]
    start = timezone.now()
    assert account_sync(account=account, gateway=gateway, now=start).ok
    gateway.open_positions = [position(1), position(2)]
    with mock.patch.object(
        sync_module, "reconciliation_store", _failing_in_the_database(sync_module.reconciliation_store)
    ):
        result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert result.ok
    assert result.reconciliation_error.startswith("DataError: division by zero")
    assert not result.guards_error
    # Reconciliation's own writes (the second position's upsert) are undone with it; the rest stands.
    assert set(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == {1}
    assert AccountSnapshot.objects.filter(account=account).count() == 2
    run = AccountSync.objects.filter(account=account).latest("started_at")
    assert (run.ok, run.reconciliation_error[:9], run.positions) == (True, "DataError", 2)
    assert GuardState.objects.get(account=account).evaluated_at == start + timedelta(seconds=10)


def test_a_database_error_in_the_guards_keeps_reconciliation_and_raises_an_operator_alert(account, gateway):
    gateway.open_positions = [position(1)]
    start = timezone.now()
    assert account_sync(account=account, gateway=gateway, now=start).ok
    gateway.open_positions = [position(1), position(2)]
    with mock.patch.object(
        sync_module, "account_guards_evaluate", _failing_in_the_database(sync_module.account_guards_evaluate)
    ):
        result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert result.ok
    assert result.guards_error.startswith("DataError: division by zero")
    assert set(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == {1, 2}
    assert AccountSnapshot.objects.filter(account=account).count() == 2
    assert GuardAlert.objects.filter(account=account, kind=AlertKind.GUARDS_FAILED).exists()
    # The guards' state write of this sync was undone with them.
    assert GuardState.objects.get(account=account).evaluated_at == start


def _commit_mode(queries) -> str:
    """How the sync's transaction committed, from its last statement (core.db.WriteBatch)."""
    every = [q["sql"] for q in queries]
    sync = every[: every.index("COMMIT")]  # (after it, the commit's callbacks may run tasks of their own)
    assert sync.count("BEGIN") == 1, every  # one transaction, one commit
    last = sync[-1]
    assert 'INSERT INTO "reconciliation_accountsync"' in last  # the run record rides in the last statement
    return "off" if "set_config('synchronous_commit', 'off', true)" in last else "on"


@pytest.mark.django_db(transaction=True)
def test_a_routine_sync_commits_asynchronously_and_a_level_change_synchronously(account, gateway):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    gateway.open_positions = [position(1)]
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)  # first sync: the peak, the events
    with CaptureQueriesContext(connection) as routine:
        assert account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10)).ok
    assert _commit_mode(routine) == "off"

    gateway.balance = Decimal(
        "9000.00"
    )  # 10 % below the peak: the drawdown guard changes level, an alert opens
    alerts = GuardAlert.objects.filter(account=account).count()
    for seconds in (20, 30, 40):
        with CaptureQueriesContext(connection) as moved:
            assert account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=seconds)).ok
        if GuardAlert.objects.filter(account=account).count() > alerts:
            break
    else:
        raise AssertionError("no guard alert opened")
    assert _commit_mode(moved) == "on"
    assert GuardState.objects.get(account=account).drawdown_level != "normal"


def test_the_deals_cursor_lives_on_the_account_and_moves_with_the_sync_only(account, gateway):
    start = timezone.now()
    asked = []
    real_deals = gateway.deals

    def deals(*, since, until):
        asked.append(since)
        return real_deals(since=since, until=until)

    gateway.deals = deals
    assert account_sync(account=account, gateway=gateway, now=start).ok
    assert asked[-1] == start - timedelta(days=1)  # none yet: the first look-back
    assert TradingAccount.objects.get(pk=account.pk).deals_cursor == start

    # A fresh copy of the account (as the worker loads it) reads from the cursor, minus the overlap.
    fresh = TradingAccount.objects.get(pk=account.pk)
    assert account_sync(account=fresh, gateway=gateway, now=start + timedelta(seconds=10)).ok
    assert asked[-1] == start - timedelta(seconds=60)

    # The deal history unreadable: the cursor stays where it was.
    gateway.timeout("deals")
    assert account_sync(account=fresh, gateway=gateway, now=start + timedelta(seconds=20)).ok
    del gateway.fail["deals"]
    assert TradingAccount.objects.get(pk=account.pk).deals_cursor == start + timedelta(seconds=10)

    # The sync's transaction fails: the cursor went with it.
    with (
        mock.patch.object(sync_module, "account_sync_build", side_effect=RuntimeError("no run record")),
        pytest.raises(RuntimeError),
    ):
        account_sync(account=fresh, gateway=gateway, now=start + timedelta(seconds=30))
    assert TradingAccount.objects.get(pk=account.pk).deals_cursor == start + timedelta(seconds=10)


def test_a_failed_combined_read_falls_back_to_each_step_reading_on_its_own(account, gateway):
    """The stored positions and the open bot trades come in one round trip; if that fails, the identity check and
    reconciliation read on their own, as they did before the two were combined: the sync goes on."""
    from django.db import DatabaseError

    gateway.open_positions = [position(1), position(2, symbol="GBPUSD")]
    assert account_sync(account=account, gateway=gateway).ok
    account.refresh_from_db()

    with mock.patch.object(sync_module, "reconciliation_reads", side_effect=DatabaseError("lost")):
        result = account_sync(account=account, gateway=gateway, now=timezone.now() + timedelta(seconds=10))

    assert result.ok
    assert not result.reconciliation_error
    assert result.positions == 2
    assert sorted(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == [1, 2]
