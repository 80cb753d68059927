"""Real syncs against simulated terminals through the real gateway stack, on PostgreSQL."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.services import account_sync
from reconciliation.models import AccountSync, CloseReason, LivePosition, ReconciliationEvent
from reconciliation.services import bot_trade_register

pytestmark = pytest.mark.django_db


def _register(account, signal_id, *, tag, side="buy", volume="0.50", entry="1.08500", sl=None, tp=None):
    return bot_trade_register(
        account=account,
        signal_id=signal_id,
        leg=1,
        symbol="EURUSD",
        side=side,
        volume=Decimal(volume),
        entry_price=Decimal(entry),
        sl=Decimal(sl) if sl else None,
        tp=Decimal(tp) if tp else None,
        tag=tag,
    ).bot_trade


def test_sync_matches_bot_trade_to_the_terminal_position(sim_account):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    trade = _register(sim.account, "s1", tag="s1", entry="1.08510")
    ticket = sim.terminal.sim_open_manual("EURUSD", "buy", "0.50", comment="s1")
    manual = sim.terminal.sim_open_manual("EURUSD", "sell", "0.10")

    result = account_sync(account=sim.account, gateway=sim.gateway)

    assert result.ok, result.error
    assert (result.matched, result.unmatched, result.missing) == (1, 1, 0)
    live = LivePosition.objects.get(account=sim.account, ticket=ticket)
    assert live.bot_trade == trade
    assert live.opened_at.tzinfo is not None
    assert live.opened_at_server_wall.utcoffset() == timedelta(hours=2)
    assert result.snapshot.balance == Decimal("10000.00")
    (event,) = ReconciliationEvent.objects.filter(account=sim.account)
    assert (event.kind, event.ticket) == ("unmatched_position", manual)


def test_position_closed_by_hand_is_missing_with_reason_manual(sim_account):
    sim = sim_account
    trade = _register(sim.account, "s1", tag="s1")
    ticket = sim.terminal.sim_open_manual("EURUSD", "buy", "0.50", comment="s1")
    account_sync(account=sim.account, gateway=sim.gateway)
    sim.terminal.sim_close_manual(ticket)

    result = account_sync(account=sim.account, gateway=sim.gateway)

    assert result.missing == 1
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.MANUAL
    event = ReconciliationEvent.objects.get(account=sim.account, kind="missing_position")
    assert event.detail["closed_by"] == "manual"
    assert event.ticket == ticket
    assert not LivePosition.objects.filter(account=sim.account).exists()


def test_stop_loss_hit_on_the_server_is_reported_as_stop_loss(sim_account):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    trade = _register(sim.account, "s1", tag="s1", entry="1.08510", sl="1.08000")
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.50", sl="1.08000", comment="s1")
    account_sync(account=sim.account, gateway=sim.gateway)
    sim.terminal.sim_set_price("EURUSD", "1.07900", "1.07910")

    account_sync(account=sim.account, gateway=sim.gateway)

    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.STOP_LOSS


def test_terminal_timeouts_fail_cleanly_open_the_circuit_and_the_next_cycle_recovers(sim_accounts):
    sim = sim_accounts.make(reset_seconds=0.3)
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.50")
    assert account_sync(account=sim.account, gateway=sim.gateway).ok

    # The terminal stops answering: every sync fails at its first call (account_info).
    sim.terminal.sim_inject_fault("account_info", times=3)
    errors = [account_sync(account=sim.account, gateway=sim.gateway).error_class for _ in range(4)]

    assert errors[:3] == ["GatewayTimeout"] * 3
    assert errors[3] == "GatewayCircuitOpen"
    assert LivePosition.objects.filter(account=sim.account).count() == 1  # nothing concluded from failures
    time.sleep(0.35)  # the circuit's reset time: the next cycle gets a trial call
    recovered = account_sync(account=sim.account, gateway=sim.gateway)
    assert recovered.ok, recovered.error
    assert AccountSync.objects.filter(account=sim.account, ok=False).count() == 4


def test_disconnect_mid_session_fails_one_sync_then_reconnects(sim_account):
    sim = sim_account
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.50")
    account_sync(account=sim.account, gateway=sim.gateway)
    sim.terminal.sim_drop_connection()

    failed = account_sync(account=sim.account, gateway=sim.gateway)
    recovered = account_sync(
        account=sim.account, gateway=sim.gateway, now=timezone.now() + timedelta(seconds=10)
    )

    assert not failed.ok
    assert failed.retryable
    assert recovered.ok, recovered.error
    assert recovered.positions == 1
