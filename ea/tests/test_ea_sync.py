"""The EA path through the account sync: an accepted push asks for a sync at once (rate-limited); a silent EA turns
into failed syncs that change nothing, while the guards wait."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from accounts.selectors import trading_account_gateway
from ea.models import EaLink
from guards.models import GuardState
from pipeline.services import account_sync
from reconciliation.models import LivePosition

pytestmark = pytest.mark.django_db


def test_an_accepted_push_asks_for_one_sync_of_its_account(
    emulator, ea_account, django_capture_on_commit_callbacks
):
    with (
        mock.patch("pipeline.tasks.account_sync.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        emulator.push()
        emulator.push()  # within the rate limit: no second sync
    delay.assert_called_once_with(ea_account.pk)


def test_a_silent_ea_makes_failed_syncs_that_keep_positions_and_the_guards_wait(
    emulator, terminal, ea_account, ea_key
):
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.50")
    emulator.push()
    first = account_sync(account=ea_account, gateway=trading_account_gateway(account=ea_account))
    assert first.ok
    assert list(LivePosition.objects.filter(account=ea_account).values_list("ticket", flat=True)) == [ticket]

    EaLink.objects.filter(pk=ea_key[0].pk).update(last_push_at=timezone.now() - timedelta(seconds=400))
    later = account_sync(
        account=ea_account, gateway=trading_account_gateway(account=ea_account), now=timezone.now()
    )
    assert not later.ok
    assert "old" in later.error
    assert list(LivePosition.objects.filter(account=ea_account).values_list("ticket", flat=True)) == [ticket]
    state = GuardState.objects.filter(account=ea_account).first()
    assert state is None or state.status != "halted"


@pytest.mark.django_db(transaction=True)
def test_the_guards_liquidate_an_ea_account_end_to_end_one_order_per_position(emulator, terminal, ea_account):
    from ea.tests.test_ea_backend import RunningEa, _closing_deals
    from guards.models import GuardStatus
    from guards.services import guard_settings_update
    from guards.services.dispatch import dispatcher_override
    from guards.services.liquidation import account_liquidate

    guard_settings_update(
        actor=None, values={"daily_loss_warning_percent": None, "daily_loss_critical_percent": None}
    )
    tickets = [terminal.sim_open_manual("EURUSD", "buy", "1.00") for _ in range(2)]
    scheduled = []

    class Dispatcher:
        def liquidation(self, **kwargs):
            scheduled.append(kwargs)

        def closes(self, **kwargs):
            pass

    gateway = trading_account_gateway(account=ea_account)
    with dispatcher_override(Dispatcher()):
        emulator.push()
        assert account_sync(account=ea_account, gateway=gateway).ok  # peak 10 000
        terminal.sim_set_price("EURUSD", "1.07400", "1.07410")  # about 22 % down
        for _ in range(2):  # two fresh readings confirm critical
            emulator.push()
            assert account_sync(account=ea_account, gateway=gateway).ok
    assert scheduled, "no liquidation was scheduled"
    with RunningEa(emulator) as ea:
        result = account_liquidate(account=ea_account, trip_id=scheduled[0]["trip_id"], gateway=gateway)
    assert not ea.errors, ea.errors
    assert result.outcome == "closed", result
    assert terminal.positions_total() == 0
    assert all(_closing_deals(terminal, t) == 1 for t in tickets)
    assert GuardState.objects.get(account=ea_account).status == GuardStatus.HALTED
