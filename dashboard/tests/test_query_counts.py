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


# Session, user, role checks, global guard settings, summary (2), banner, page count + rows, and Django's own.
OVERVIEW_QUERIES = 15


@pytest.mark.parametrize("size", [20, 1000])
def test_overview_renders_in_a_constant_number_of_queries(client, owner, django_assert_num_queries, size):
    client.force_login(owner)
    _fleet(size, 700_000)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count('id="overview-account-') == min(size, 50)
