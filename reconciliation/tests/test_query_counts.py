"""Queries per account sync do not grow with the number of positions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import TradingAccountFactory
from pipeline.services import account_sync
from reconciliation.symbols import symbol_table_for_account
from reconciliation.tests.factories import BotTradeFactory
from reconciliation.tests.fakes import FakeGateway, position

pytestmark = pytest.mark.django_db

# A steady sync issues 9 statements of its own: bot trades; snapshot (constraint check by the snapshot's full_clean,
# insert, account update); positions upsert + delete; events read + touch; the run record. Reading what the market
# guard needs of the symbols held (before any lock) asks the market settings (1). Guards add 2 (state read for update,
# state update). SAVEPOINT/RELEASE statements are not counted: they exist only because the test runs
# inside a transaction (in production the sync's atomic blocks are outermost).
OWN_STEADY = 9
MARKET_NEEDS = 1
GUARDS = 2
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
    return sum(1 for query in ctx.captured_queries if "SAVEPOINT" not in query["sql"])


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
    assert steady <= STEADY_QUERIES


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
