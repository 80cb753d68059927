"""`make run` demo data: one of the demo accounts is on a netting server, and syncs as a netting account."""

import pytest
from django.core.management import call_command

from accounts.models import MarginMode, TradingAccount
from accounts.selectors import trading_account_gateway
from integrations.mt5.bridge.server import SimulatedBackend
from integrations.mt5.simulated import TerminalRegistry
from integrations.mt5.tests.fakes import running_bridge
from pipeline.services import account_sync
from reconciliation.models import LivePosition, NetMatch

pytestmark = pytest.mark.django_db
SECRET = "demo-test-secret"


def test_the_demo_has_a_netting_account_that_the_sync_reconciles_by_net_position(settings):
    settings.DEBUG = True
    registry = TerminalRegistry()
    with running_bridge(SimulatedBackend(registry=registry), SECRET) as bridge:
        settings.MT5_BRIDGE_URL, settings.MT5_BRIDGE_SECRET = bridge.url, SECRET
        call_command("seed_demo_users", stdout=None)
        (account,) = TradingAccount.objects.filter(label="Bob Netting FX")
        gateway = trading_account_gateway(account=account)
        # The worker may sync before the demo market provisions: the bridge then opens a default (hedging) account.
        assert account_sync(account=account, gateway=gateway).ok
        call_command("run_demo_market", "--iterations", "12", "--interval", "0", "--seed", "3")

        assert (
            TradingAccount.objects.exclude(server=account.server).count() >= 3
        )  # and hedging ones beside it
        assert registry.get(account.login, account.server).account_info().margin_mode == 0  # RETAIL_NETTING
        result = account_sync(account=account, gateway=gateway)

    assert result.ok, result.error
    assert result.matched >= 1  # the demo bot's trades, matched by net position (--seed 3 opens some)
    account.refresh_from_db()
    assert account.margin_mode == MarginMode.NETTING
    live = list(LivePosition.objects.filter(account=account))
    assert len({p.symbol for p in live}) == len(live) == result.positions  # one position per symbol
    assert set(NetMatch.objects.filter(account=account).values_list("ticket", flat=True)) <= {
        p.ticket for p in live
    }
    assert {p.match_method for p in live} <= {"net", ""}
