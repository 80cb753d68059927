"""Queries per account sync do not grow with the number of positions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import TradingAccountFactory
from reconciliation.services import account_sync
from reconciliation.symbols import symbol_table_for_account
from reconciliation.tests.factories import BotTradeFactory
from reconciliation.tests.fakes import FakeGateway, position

pytestmark = pytest.mark.django_db

# A steady sync in production issues 9 statements: bot trades; snapshot (constraint check, insert, account
# update); positions upsert + delete; events read + touch; the run record. Inside the test's transaction Django
# adds SAVEPOINT/RELEASE pairs around the snapshot's constraint check and the sync's atomic block (+4).
STEADY_QUERIES = 9 + 4


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
    return len(ctx.captured_queries)


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
    assert first <= STEADY_QUERIES + 2  # + events insert + bot trades update on the first sync
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
