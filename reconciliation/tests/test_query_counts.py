"""Queries per account sync do not grow with the number of positions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import TradingAccountFactory
from core.db import sql_statements
from pipeline.services import account_sync
from reconciliation.symbols import symbol_table_for_account
from reconciliation.tests.factories import BotTradeFactory
from reconciliation.tests.fakes import FakeGateway, position

pytestmark = pytest.mark.django_db

# A steady sync issues 6 statements of its own: the stored positions (terminal identity check) and the open bot trades,
# read before the transaction (two statements, one round trip: reconciliation_reads); then, in ONE transaction: the snapshot (insert + the account's update, one statement),
# the positions upsert (with the delete of closed ones), the events read, and the last statement that carries the
# writes nothing reads back (events touch, guard state, run record) and the commit mode (core.db.WriteBatch).
# Reading what the market guard needs of the symbols held (before any lock) asks the market settings (1). Guards add
# 1 (state read for update; their UPDATE rides in the last statement). Transaction control (BEGIN, COMMIT, SAVEPOINT) is not counted here;
# the round trips, which count it, are checked below.
# The budget is 10 per sync, whatever the number of positions.
OWN_STEADY = 6
MARKET_NEEDS = 1
GUARDS = 1
BUDGET = 10
STEADY_QUERIES = OWN_STEADY + MARKET_NEEDS + GUARDS


def _book(account, gateway, count):
    gateway.open_positions = []
    for index in range(count):
        tag = f"t{index}"
        price = Decimal("1.08000") + Decimal(index) / 1000
        BotTradeFactory(account=account, tag=tag, entry_price=price, sl=Decimal("1.05000"))
        # Every position matched; half of them with an SL divergence (an event that stays open).
        sl = "1.05000" if index % 2 else "1.04000"
        gateway.open_positions.append(position(1000 + index, comment=tag, price_open=str(price), sl=sl))
    gateway.open_positions.append(position(99999, symbol="GBPUSD"))  # one unmatched position


def _queries(account, gateway, now):
    with CaptureQueriesContext(connection) as ctx:
        result = account_sync(account=account, gateway=gateway, now=now)
    assert result.ok
    assert not result.guards_error
    return len(sql_statements(ctx.captured_queries))


def _warm(account, gateway):
    # Overrides and symbol specs cached (the steady state of a running worker).
    symbol_table_for_account(account=account, gateway=gateway, terminal_names=["EURUSD", "GBPUSD"])


@pytest.mark.parametrize("count", [5, 50])
def test_sync_queries_stay_within_budget(account, gateway, count):
    _book(account, gateway, count)
    _warm(account, gateway)
    start = timezone.now()
    first = _queries(account, gateway, start)
    steady = _queries(account, gateway, start + timedelta(seconds=10))
    assert (
        first <= STEADY_QUERIES + 3
    )  # + events insert + bot trades update (+ guard state creation) at first
    assert steady <= STEADY_QUERIES <= BUDGET


def test_query_count_for_5_and_50_positions_is_the_same(account, gateway):
    other = TradingAccountFactory()
    other_gateway = FakeGateway(login=other.login, server=other.server)
    _book(account, gateway, 5)
    _book(other, other_gateway, 50)
    _warm(account, gateway)
    start = timezone.now()
    counts = {}
    for name, acct, gw in (("5", account, gateway), ("50", other, other_gateway)):
        first = _queries(acct, gw, start)
        steady = _queries(acct, gw, start + timedelta(seconds=10))
        counts[name] = (first, steady)
    assert counts["5"] == counts["50"], counts
