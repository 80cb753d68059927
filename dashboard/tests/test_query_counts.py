"""The overview renders with the same number of queries whatever the fleet's size."""

from decimal import Decimal

import pytest

from accounts.models import AccountHealth, AccountSnapshot, TradingAccount
from accounts.tests.factories import UserFactory
from guards.models import GuardState
from reconciliation.models import AccountSync, ReconciliationEvent

pytestmark = pytest.mark.django_db


def _fleet(size: int, start: int) -> None:
    from django.utils import timezone

    now = timezone.now()
    owner = UserFactory()
    accounts = TradingAccount.objects.bulk_create(
        TradingAccount(owner=owner, login=start + i, server="Sim-Demo") for i in range(size)
    )
    snapshots = AccountSnapshot.objects.bulk_create(
        AccountSnapshot(
            account=a,
            balance=Decimal("10000"),
            equity=Decimal("9900"),
            margin_free=Decimal("9900"),
            currency="USD",
            taken_at=now,
            server_time=now,
        )
        for a in accounts
    )
    for account, snapshot in zip(accounts, snapshots, strict=True):
        account.latest_snapshot = snapshot
    TradingAccount.objects.bulk_update(accounts, ["latest_snapshot"])
    GuardState.objects.bulk_create(
        GuardState(
            account=a,
            peak_equity=Decimal("10000"),
            day_anchor=Decimal("10000"),
            drawdown_percent=Decimal("1"),
        )
        for a in accounts
    )
    AccountHealth.objects.bulk_create(
        AccountHealth(account=a, connected=True, probe_latency_ms=Decimal("1"), checked_at=now)
        for a in accounts
    )
    AccountSync.objects.bulk_create(
        AccountSync(account=a, started_at=now, finished_at=now, ok=True) for a in accounts
    )
    ReconciliationEvent.objects.bulk_create(
        ReconciliationEvent(
            account=a,
            kind="unmatched_position",
            fingerprint=f"f{a.pk}",
            ticket=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        for a in accounts[::3]
    )


def _queries_for_overview(client, django_assert_max_num_queries) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_overview_queries_do_not_grow_with_the_fleet(client, owner, django_assert_max_num_queries):
    client.force_login(owner)
    _fleet(20, 700_000)
    small = _queries_for_overview(client, django_assert_max_num_queries)
    _fleet(1000, 800_000)
    large = _queries_for_overview(client, django_assert_max_num_queries)
    assert large == small
    assert small <= 14
