"""Guard evaluation adds at most two statements to an account sync (the issue's performance budget), one of them sent
with the sync's own last statement.

Steady state: a fresh snapshot, positions open, no level change. Transitions add one INSERT for their alerts.
The sync comparison runs outside any test transaction, as in production. It counts SQL statements; the whole sync
is one transaction, whose BEGIN/COMMIT Django 5 also lists among the queries."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import sql_statements
from guards.models import GuardState
from guards.services import account_guards_evaluate, market_reading_take
from guards.tests.conftest import START, evaluate_reading, make_snapshot, reading_of
from pipeline.services import account_sync
from reconciliation.models import LivePosition

pytestmark = pytest.mark.django_db


def test_evaluate_is_two_queries_in_the_steady_state(account, sim, gateway, clock):
    sim.sim_open_manual("EURUSD", "buy", "0.5")
    sim.sim_open_manual("GBPUSD", "sell", "0.5")
    positions = list(gateway.positions())
    for second in (0, 10):  # the state row exists, the market guard has its memory
        snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=second))
        evaluate_reading(account=account, snapshot=snapshot, positions=positions, gateway=gateway)
    snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=20))
    market = market_reading_take(account=account, gateway=gateway, positions=positions, now=snapshot.taken_at)
    reading = reading_of(snapshot, positions=positions, market=market)  # taken by the sync, before the guards
    with CaptureQueriesContext(connection) as queries:
        result = account_guards_evaluate(account=account, snapshot=snapshot, reading=reading)
    assert result.fresh
    assert len(queries) <= 2, [q["sql"][:120] for q in queries]
    assert "FOR UPDATE" in queries[0]["sql"]
    assert queries[1]["sql"].startswith("UPDATE")
    assert set(GuardState.objects.get(account=account).market) == {"EURUSD", "GBPUSD"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_guards_add_at_most_two_statements_to_an_account_sync(account, sim, gateway, clock):
    """Everything the database sees from the moment the sync hands over to the guards until they return, and the
    sync's last statement: the guards lock their row (one SELECT) and hand the state's UPDATE to the sync's batch,
    sent with the sync's last statement, inside the sync's one transaction (one BEGIN, one COMMIT)."""
    from pipeline.services import sync as sync_module

    sim.sim_open_manual("EURUSD", "buy", "0.5")
    sim.sim_open_manual("EURUSD", "buy", "0.3")
    for second in (0, 10, 20):  # warm: state row, symbol tables, events, market memory
        sim.sim_set_time(START + timedelta(seconds=second))
        account_sync(account=account, gateway=gateway, now=START + timedelta(seconds=second))

    captured: list[str] = []
    real_evaluate = sync_module.account_guards_evaluate

    def measured(**kwargs):
        with CaptureQueriesContext(connection) as queries:
            result = real_evaluate(**kwargs)
        captured.extend(q["sql"] for q in queries)
        return result

    sim.sim_set_time(START + timedelta(seconds=30))
    with (
        mock.patch.object(sync_module, "account_guards_evaluate", measured),
        CaptureQueriesContext(connection) as whole,
    ):
        result = account_sync(account=account, gateway=gateway, now=START + timedelta(seconds=30))
    assert result.ok
    assert result.guards_error == ""
    statements = sql_statements({"sql": sql} for sql in captured)
    assert len(statements) == 1, statements
    assert statements[0].startswith("SELECT")
    assert "FOR UPDATE" in statements[0]
    every = [q["sql"] for q in whole]
    assert every.count("BEGIN") == 1, every
    assert every.count("COMMIT") == 1, every
    last = every[every.index("COMMIT") - 1]
    assert last.startswith("WITH "), last
    assert 'UPDATE "guards_guardstate"' in last, last
    assert "synchronous_commit" in last  # a routine sync: no level change, no alert
    assert LivePosition.objects.filter(account=account).count() == 2
