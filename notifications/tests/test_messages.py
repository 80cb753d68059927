"""Messages people can act on: account, numbers with the symbol's digits and the currency, retcode names, the
recipient's time zone, the account link."""

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from accounts.services import trading_account_create
from guards.tests.conftest import make_snapshot
from notifications.messages import local_time, notification_render, retcode_text
from notifications.models import EventKind, Notification, Severity
from reconciliation.models import LivePosition
from reconciliation.symbols import _spec_key

pytestmark = pytest.mark.django_db

AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_local_time_in_the_recipients_zone():
    assert local_time(AT, "America/New_York") == "2026-07-01 08:00:00 EDT (America/New_York)"
    assert local_time("2026-07-01T12:00:00+00:00", "Asia/Tokyo") == "2026-07-01 21:00:00 JST (Asia/Tokyo)"


def test_retcodes_are_named():
    assert retcode_text(10018) == "10018 (TRADE_RETCODE_MARKET_CLOSED)"
    assert retcode_text(None).startswith("no retcode")


def test_a_failed_close_names_the_position_with_the_symbols_digits_and_the_currency(trader):
    account = trading_account_create(owner=trader, login=8001, server="Msg-Demo", label="Main")
    make_snapshot(account, equity=9_000, at=AT)
    account.latest_snapshot.currency = "EUR"
    account.latest_snapshot.save(update_fields=["currency"])
    cache.set(_spec_key("Msg-Demo", "USDJPY"), (3, "0.001"))
    LivePosition.objects.create(
        account=account, ticket=42, symbol="USDJPY", canonical_symbol="USDJPY", side="buy", volume="0.50",
        price_open="151.2", price_current="150.12345", profit="-1234.5", opened_at=AT, opened_at_server_epoch=0,
        first_seen_at=AT, last_seen_at=AT,
    )  # fmt: skip
    n = Notification(
        event_key="alert:1", kind=EventKind.CLOSE_FAILED, severity=Severity.CRITICAL, account=account,
        channel="email", destination="email:x", occurred_at=AT, next_attempt_at=AT,
        payload={"ticket": 42, "symbol": "USDJPY", "message": "Closing #42 failed: market closed",
                 "detail": {"retcode": 10018}},
    )  # fmt: skip
    message = notification_render(n, tz="Europe/London")
    assert message.title == "🚨 Close failed — 8001@Msg-Demo (Main)"
    assert "Position #42 USDJPY buy 0.5 lot, open 151.200, last 150.123, profit -1,234.50 EUR" in message.text
    assert "retcode 10018 (TRADE_RETCODE_MARKET_CLOSED)" in message.text
    assert "Time: 2026-07-01 13:00:00 BST (Europe/London)" in message.text
    assert message.link == f"https://guard.example.test/accounts/{account.pk}/"
