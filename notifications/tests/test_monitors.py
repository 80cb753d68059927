"""Stale accounts (no fresh reading / terminal disconnected for too long) and the daily divergence digest."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AccountHealth
from accounts.services import trading_account_create
from guards.tests.conftest import make_snapshot
from notifications.models import EventKind, Notification
from notifications.services import accounts_stale_notify, divergence_digest_notify, notification_deliver
from reconciliation.models import ReconciliationEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_stale_account_is_reported_once_per_episode(people, telegram, settings):
    settings.NOTIFY_ACCOUNT_STALE_SECONDS = 300
    trader = people["trader"]
    account = trading_account_create(owner=trader, login=7001, server="Stale-Demo")
    make_snapshot(account, equity=10_000, at=NOW - timedelta(minutes=10))
    AccountHealth.objects.create(
        account=account,
        connected=False,
        probe_latency_ms=5,
        error="no connection to trade server",
        checked_at=NOW,
    )
    assert accounts_stale_notify(now=NOW) == 1
    assert accounts_stale_notify(now=NOW + timedelta(minutes=1)) == 0  # same episode
    rows = Notification.objects.filter(kind=EventKind.ACCOUNT_STALE)
    assert {r.recipient for r in rows} == {trader, people["owner"], people["support"]}
    n = rows.get(destination__startswith="telegram:", recipient=trader)
    assert notification_deliver(notification_id=n.pk).outcome == "sent"
    [text] = telegram.sent
    assert "No fresh account reading for 600 s" in text["text"]
    assert "The terminal is disconnected: no connection to trade server." in text["text"]

    make_snapshot(account, equity=10_000, at=NOW + timedelta(minutes=2))  # back
    assert accounts_stale_notify(now=NOW + timedelta(minutes=3)) == 0
    assert accounts_stale_notify(now=NOW + timedelta(minutes=20)) == 1  # a new episode


def test_a_fresh_account_is_not_reported(people):
    account = trading_account_create(owner=people["trader"], login=7002, server="Fresh-Demo")
    make_snapshot(account, equity=10_000, at=NOW - timedelta(seconds=30))
    assert accounts_stale_notify(now=NOW) == 0


def _divergence(account, fingerprint: str, kind: str = "volume_mismatch") -> None:
    ReconciliationEvent.objects.create(
        account=account, kind=kind, fingerprint=fingerprint, first_seen_at=NOW - timedelta(hours=5),
        last_seen_at=NOW,
    )  # fmt: skip


def test_the_daily_digest_goes_to_support_only_once_a_day(people, settings):
    settings.NOTIFY_DIGEST_HOUR_UTC = 7
    account = trading_account_create(owner=people["trader"], login=7003, server="Digest-Demo")
    _divergence(account, "a")
    _divergence(account, "b", kind="unmatched_position")
    assert divergence_digest_notify(now=NOW.replace(hour=6)) == 0  # before the hour
    assert divergence_digest_notify(now=NOW) > 0
    assert divergence_digest_notify(now=NOW + timedelta(hours=1)) == 0
    rows = Notification.objects.filter(kind=EventKind.DIVERGENCE_DIGEST)
    assert {r.recipient for r in rows} == {people["support"]}
    assert rows.first().payload["total"] == 2


def test_no_digest_without_open_divergences(people):
    assert divergence_digest_notify(now=NOW) == 0
