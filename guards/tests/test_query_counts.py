"""Guard evaluation adds at most two queries to an account sync (the issue's performance budget).

Steady state: a fresh snapshot, positions open, no level change. Transitions add one INSERT for their alerts.
The sync comparison runs outside any test transaction, as in production (inside one, the sync's own atomic block
around the guards becomes a savepoint). It counts SQL statements; the guards' two run in one transaction, whose
BEGIN/COMMIT Django 5 also lists among the queries."""

from contextlib import nullcontext
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guards.models import GuardState
from guards.services import account_guards_evaluate
from guards.tests.conftest import START, make_snapshot
from reconciliation.models import LivePosition
from reconciliation.services import account_sync

pytestmark = pytest.mark.django_db


def test_evaluate_is_two_queries_in_the_steady_state(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "0.5")
    sim.sim_open_manual("GBPUSD", "sell", "0.5")
    positions = list(gateway.positions())
    for second in (0, 10):  # the state row exists, the market guard has its memory
        snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=second))
        account_guards_evaluate(account=account, snapshot=snapshot, positions=positions, gateway=gateway)
    snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=20))
    with CaptureQueriesContext(connection) as queries:
        result = account_guards_evaluate(
            account=account, snapshot=snapshot, positions=positions, gateway=gateway
        )
    assert result.fresh
    assert len(queries) <= 2, [q["sql"][:120] for q in queries]
    assert "FOR UPDATE" in queries[0]["sql"]
    assert queries[1]["sql"].startswith("UPDATE")
    assert set(GuardState.objects.get(account=account).market) == {"EURUSD", "GBPUSD"}


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _statements(sql: list[str]) -> list[str]:
    return [s for s in sql if not s.startswith(TRANSACTION_CONTROL)]


def _sync_queries(account, gateway, *, second: int, guards: bool) -> list[str]:
    now = START + timedelta(seconds=second)
    patcher = (
        mock.patch("reconciliation.services.sync._guards_evaluate", return_value="")
        if not guards
        else nullcontext()
    )
    with patcher, CaptureQueriesContext(connection) as queries:
        result = account_sync(account=account, gateway=gateway, now=now)
    assert result.ok, result.error
    assert result.guards_error == ""
    return [q["sql"] for q in queries]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_guards_add_at_most_two_queries_to_an_account_sync(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "0.5")
    sim.sim_open_manual("EURUSD", "buy", "0.3")
    for second in (0, 10, 20):  # warm: state row, symbol tables, events, market memory
        sim.sim_set_time(START + timedelta(seconds=second))
        account_sync(account=account, gateway=gateway, now=START + timedelta(seconds=second))
    sim.sim_set_time(START + timedelta(seconds=30))
    without = _sync_queries(account, gateway, second=30, guards=False)
    sim.sim_set_time(START + timedelta(seconds=40))
    with_guards = _sync_queries(account, gateway, second=40, guards=True)
    assert LivePosition.objects.filter(account=account).count() == 2
    added = _statements(with_guards)[len(_statements(without)) :]
    assert len(_statements(with_guards)) - len(_statements(without)) <= 2, added
    assert [a.split(" ", 1)[0] for a in added] == ["SELECT", "UPDATE"]
    assert "FOR UPDATE" in added[0]
    # ... inside the one transaction the sync opens around the guards (Django 5 lists BEGIN/COMMIT too).
    assert len(with_guards) - len(without) <= 4
