from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.services import trading_account_create
from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from guards.models import AccountGuardSettings, GuardSettings, GuardState, GuardStatus
from guards.selectors import account_guard_status, account_is_halted, guard_settings_for_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=7001, server="Sim-Demo")


def test_global_settings_row_has_the_spec_defaults():
    row = GuardSettings.objects.get(pk=1)
    assert row.drawdown_warning_percent == Decimal("10")
    assert row.drawdown_critical_percent == Decimal("20")
    assert row.daily_loss_warning_percent == Decimal("4")
    assert row.daily_loss_critical_percent == Decimal("5")
    assert row.confirm_readings == 2
    assert row.liquidation_grace_seconds == 10
    assert row.market_gap_percent == Decimal("5")
    assert row.market_spread_multiplier == Decimal("3")
    assert row.market_stale_quote_seconds == 60
    assert row.market_guard_action == "alert"


def test_account_override_wins_and_empty_inherits(account):
    AccountGuardSettings.objects.create(account=account, drawdown_critical_percent=Decimal("15"))
    effective = guard_settings_for_account(account=account)
    assert effective.drawdown_critical_percent == Decimal("15")
    assert effective.drawdown_warning_percent == Decimal("10")


def test_daily_loss_can_be_switched_off_per_account(account):
    AccountGuardSettings.objects.create(account=account, daily_loss_enabled=False)
    effective = guard_settings_for_account(account=account)
    assert effective.daily_loss_warning_percent is None
    assert effective.daily_loss_critical_percent is None


def test_account_is_halted_while_tripped_or_halted(account):
    assert account_is_halted(account=account) is False
    state = GuardState.objects.create(account=account)
    assert account_is_halted(account=account) is False
    for status in (GuardStatus.TRIPPED, GuardStatus.HALTED):
        state.status = status
        state.trip_id = "4b1e0d9c-7e0a-4c55-9d6a-4d0f9a4b7f10"
        state.save()
        assert account_is_halted(account=account) is True


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 3, 2, 21, 59, 59, tzinfo=UTC), 1),  # broker UTC+2: one second before its midnight
        (datetime(2026, 3, 2, 22, tzinfo=UTC), 86_400),  # at midnight the new day has begun: the next one
        (datetime(2026, 3, 2, 22, 0, 1, tzinfo=UTC), 86_399),
    ],
)
def test_the_daily_reset_countdown_is_to_the_next_broker_midnight(now, seconds):
    account = TradingAccountFactory()
    account.latest_snapshot = AccountSnapshotFactory(account=account, server_utc_offset_seconds=7200)
    status = account_guard_status(account=account, now=now)
    assert status["headroom"]["seconds_to_daily_reset"] == seconds


def test_no_daily_reset_countdown_while_the_broker_offset_is_unknown():
    # The guard does not roll its day on a guessed clock (guards.services.evaluate); the pages must not count down
    # to a guessed midnight either.
    account = TradingAccountFactory()
    account.latest_snapshot = AccountSnapshotFactory(
        account=account, server_utc_offset_seconds=0, server_utc_offset_known=False
    )
    status = account_guard_status(account=account, now=datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert status["headroom"]["seconds_to_daily_reset"] is None
    assert status["binding"]["next_reset"] is None
