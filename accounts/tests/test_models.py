from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount
from accounts.services import trading_account_create
from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory

pytestmark = pytest.mark.django_db


def test_login_must_be_a_positive_integer(trader):
    with pytest.raises(ValidationError) as exc:
        trading_account_create(owner=trader, login=0, server="Broker-Demo")
    assert "login" in exc.value.message_dict
    assert not TradingAccount.objects.exists()


def test_server_must_not_be_blank(trader):
    with pytest.raises(ValidationError) as exc:
        trading_account_create(owner=trader, login=1001, server="   ")
    assert "server" in exc.value.message_dict
    assert not TradingAccount.objects.exists()


def test_duplicate_login_and_server_is_refused_with_a_clear_message(trader, other_trader):
    trading_account_create(owner=trader, login=1001, server="Broker-Demo")
    with pytest.raises(ValidationError) as exc:
        trading_account_create(owner=other_trader, login=1001, server="Broker-Demo")
    assert "An account with this login already exists on this server." in str(exc.value)
    assert TradingAccount.objects.count() == 1


def test_same_login_on_another_server_is_a_different_account(trader):
    trading_account_create(owner=trader, login=1001, server="Broker-Demo")
    trading_account_create(owner=trader, login=1001, server="Broker-Live")
    assert TradingAccount.objects.count() == 2


def test_database_refuses_duplicates_even_without_validation(trader):
    TradingAccountFactory(owner=trader, login=7, server="S")
    with pytest.raises(IntegrityError), transaction.atomic():
        TradingAccount.objects.create(owner=trader, login=7, server="S")


def test_unknown_connection_settings_are_refused(trader):
    with pytest.raises(ValidationError) as exc:
        trading_account_create(owner=trader, login=1, server="S", connection={"host": "x"})
    assert "Unknown connection settings: host" in str(exc.value)


@pytest.mark.parametrize("field", ["margin"])
def test_snapshot_with_negative_margin_is_refused(field):
    snapshot = AccountSnapshotFactory.build(account=TradingAccountFactory(), **{field: Decimal("-1")})
    with pytest.raises(ValidationError) as exc:
        snapshot.full_clean()
    assert field in exc.value.message_dict


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_snapshot_with_non_finite_numbers_is_refused(value):
    snapshot = AccountSnapshotFactory.build(account=TradingAccountFactory(), equity=Decimal(value))
    with pytest.raises(ValidationError) as exc:
        snapshot.full_clean()
    assert "equity" in exc.value.message_dict


def test_database_refuses_negative_margin():
    with pytest.raises(IntegrityError), transaction.atomic():
        AccountSnapshotFactory(margin=Decimal("-5"))


def test_snapshot_freshness_follows_the_configured_age(settings):
    settings.ACCOUNT_SNAPSHOT_STALE_SECONDS = 300
    account = TradingAccountFactory()
    assert not account.is_snapshot_fresh  # never synced
    account.latest_snapshot = AccountSnapshotFactory(
        account=account, taken_at=timezone.now() - timedelta(seconds=299)
    )
    assert account.is_snapshot_fresh
    account.latest_snapshot = AccountSnapshotFactory(
        account=account, taken_at=timezone.now() - timedelta(seconds=301)
    )
    assert not account.is_snapshot_fresh


def test_snapshot_keeps_the_broker_wall_clock_beside_utc():
    taken = timezone.now().replace(microsecond=0)
    snap = AccountSnapshotFactory(taken_at=taken, server_time=taken, server_utc_offset_seconds=7200)
    snap = AccountSnapshot.objects.get(pk=snap.pk)
    assert snap.server_wall_time == taken
    assert snap.server_wall_time.utcoffset() == timedelta(hours=2)
    assert snap.server_wall_time.hour == (taken + timedelta(hours=2)).hour
