"""A terminal that is no longer the account it was (another login, a reset terminal) makes the sync fail and holds
the account until an operator confirms it: nothing is matched, nothing is liquidated on the wrong account."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import TerminalIdentityEvent
from accounts.services import trading_account_identity_confirm
from guards.models import CloseIntent
from integrations.mt5.simulated import SimulatedTerminal
from pipeline.services import account_sync
from reconciliation.models import LivePosition, ReconciliationEvent

pytestmark = pytest.mark.django_db


def _swap_terminal(sim, login=None) -> SimulatedTerminal:
    """The account's terminal comes back as a fresh one (ticket counters and history reset), by default logged in
    to the same account."""
    fresh = SimulatedTerminal(
        login=login or sim.account.login, server=sim.account.server, password="sim-pass"
    )
    fresh.sim_set_price("EURUSD", "1.08500", "1.08510")
    fresh.initialize()
    sim.gateway._gateway._api = fresh  # the same gateway stack, now talking to the new terminal
    return fresh


def test_a_terminal_logged_in_to_another_account_is_held_and_nothing_is_concluded(sim_account):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.50")
    assert account_sync(account=sim.account, gateway=sim.gateway).ok
    other = _swap_terminal(sim, login=sim.account.login + 1)  # someone logged the VPS's terminal into another
    other.sim_open_manual("EURUSD", "sell", "2.00")

    result = account_sync(account=sim.account, gateway=sim.gateway)

    assert not result.ok
    assert result.error_class == "TerminalIdentityChanged"
    assert "logged in to" in result.error
    assert LivePosition.objects.filter(account=sim.account).count() == 1  # untouched


def test_a_reset_terminal_is_held_until_an_operator_confirms(sim_account, owner):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    for _ in range(3):
        sim.terminal.sim_open_manual("EURUSD", "buy", "0.50")
    assert account_sync(account=sim.account, gateway=sim.gateway).ok
    known = set(LivePosition.objects.filter(account=sim.account).values_list("ticket", flat=True))

    fresh = _swap_terminal(sim)
    fresh.sim_set_price("GBPUSD", "1.26500", "1.26510")
    fresh.sim_open_manual("GBPUSD", "sell", "0.10")  # a "new" position that recycles a ticket we hold
    result = account_sync(account=sim.account, gateway=sim.gateway)

    assert not result.ok
    assert result.error_class == "TerminalIdentityChanged"
    sim.account.refresh_from_db()
    assert sim.account.identity_hold_reason
    assert set(LivePosition.objects.filter(account=sim.account).values_list("ticket", flat=True)) == known
    assert not ReconciliationEvent.objects.filter(account=sim.account, kind="missing_position").exists()
    assert not CloseIntent.objects.filter(account=sim.account).exists()
    assert TerminalIdentityEvent.objects.filter(account=sim.account, kind="hold").count() == 1

    # Held: later syncs fail too, and the hold is recorded once.
    assert not account_sync(account=sim.account, gateway=sim.gateway).ok
    assert TerminalIdentityEvent.objects.filter(account=sim.account, kind="hold").count() == 1

    with pytest.raises(ValidationError):
        trading_account_identity_confirm(account=sim.account, actor=owner, reason="  ")
    trading_account_identity_confirm(account=sim.account, actor=owner, reason="trader re-installed the VPS")
    sim.account.refresh_from_db()
    assert account_sync(account=sim.account, gateway=sim.gateway).ok
    confirmed = TerminalIdentityEvent.objects.get(account=sim.account, kind="confirmed")
    assert (confirmed.actor, confirmed.reason) == (owner, "trader re-installed the VPS")


def test_positions_vanishing_without_deals_hold_the_account_but_real_closes_do_not(sim_accounts):
    closed_by_trader, wiped = sim_accounts.make(), sim_accounts.make()
    for sim in (closed_by_trader, wiped):
        sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
        tickets = [sim.terminal.sim_open_manual("EURUSD", "buy", "0.50") for _ in range(2)]
        assert account_sync(account=sim.account, gateway=sim.gateway).ok
    for ticket in [p.ticket for p in closed_by_trader.terminal.positions_get()]:
        closed_by_trader.terminal.sim_close_manual(ticket)
    assert account_sync(account=closed_by_trader.account, gateway=closed_by_trader.gateway).ok

    _swap_terminal(wiped)  # comes back empty, as a simulator without saved state did
    result = account_sync(account=wiped.account, gateway=wiped.gateway)
    assert not result.ok
    assert "vanished" in result.error
    assert tickets  # the wiped account's positions are still on record


def test_support_confirms_a_held_account_in_the_admin_and_a_trader_cannot(sim_account, support, trader):
    from django.test import Client

    from accounts.services import trading_account_identity_hold

    account = sim_account.account
    trading_account_identity_hold(account=account, reason="tickets went backwards", detail={})
    client = Client()
    client.force_login(support)
    form = client.post(
        "/admin/accounts/tradingaccount/",
        {"action": "confirm_terminal_identity", "_selected_action": [account.pk]},
    )
    assert form.status_code == 200
    assert "tickets went backwards" in form.content.decode()
    client.post(
        "/admin/accounts/tradingaccount/",
        {"action": "confirm_terminal_identity", "_selected_action": [account.pk], "apply": "1", "reason": ""},
    )
    account.refresh_from_db()
    assert account.identity_hold_reason  # no reason, no confirmation
    client.post(
        "/admin/accounts/tradingaccount/",
        {"action": "confirm_terminal_identity", "_selected_action": [account.pk], "apply": "1",
         "reason": "checked with the trader"},
    )  # fmt: skip
    account.refresh_from_db()
    assert account.identity_hold_reason == ""
    assert TerminalIdentityEvent.objects.get(account=account, kind="confirmed").actor == support
    trader_client = Client()
    trader_client.force_login(trader)
    assert trader_client.get("/admin/accounts/tradingaccount/").status_code in {302, 403}
