"""Live syncs of netting accounts (and the ticket rule live) against simulated terminals, on PostgreSQL + Redis."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import MarginMode
from accounts.tests.factories import UserFactory
from integrations.mt5 import constants as mt5
from pipeline.services import account_sync
from reconciliation.models import (
    BotTrade,
    CloseReason,
    EventState,
    LivePosition,
    NetMatch,
    ReconciliationEvent,
)
from reconciliation.services import bot_trade_register, event_acknowledge, event_resolve

pytestmark = pytest.mark.django_db


def _register(account, signal_id, *, leg=1, side="buy", volume="0.30", entry="1.08510", ticket=None, tag=""):
    return bot_trade_register(
        account=account,
        signal_id=signal_id,
        leg=leg,
        symbol="EURUSD",
        side=side,
        volume=Decimal(volume),
        entry_price=Decimal(entry),
        ticket=ticket,
        tag=tag,
    ).bot_trade


class Clock:
    """Sync instants 10 s apart (events keep first/last seen on the syncs' clock)."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        self.now += timedelta(seconds=10)
        return self.now


def _active_events(account):
    return list(
        ReconciliationEvent.objects.filter(account=account, gone_at__isnull=True).order_by("kind", "pk")
    )


@pytest.fixture
def netting(sim_accounts):
    sim = sim_accounts.make(margin_mode="netting")
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    return sim


def _three_entry_setup(sim):
    trades = [
        _register(sim.account, "sig-7", leg=1, volume="0.30"),
        _register(sim.account, "sig-7", leg=2, volume="0.20"),
        _register(sim.account, "sig-7", leg=3, volume="0.10"),
    ]
    tickets = {sim.terminal.sim_open_manual("EURUSD", "buy", volume) for volume in ("0.30", "0.20", "0.10")}
    assert len(tickets) == 1  # one position per symbol: every entry added to it
    return trades, tickets.pop()


def test_a_three_entry_setup_on_a_netting_account_syncs_with_no_divergence(netting):
    trades, ticket = _three_entry_setup(netting)

    result = account_sync(account=netting.account, gateway=netting.gateway, now=Clock()())

    assert result.ok, result.error
    assert (result.matched, result.unmatched, result.missing) == (3, 0, 0)
    assert _active_events(netting.account) == []
    netting.account.refresh_from_db()
    assert netting.account.margin_mode == MarginMode.NETTING
    assert result.snapshot.margin_mode == MarginMode.NETTING
    row = NetMatch.objects.get(account=netting.account)
    assert (row.canonical_symbol, row.ticket, row.side) == ("EURUSD", ticket, "buy")
    assert (row.net_volume, row.position_volume, row.divergences) == (Decimal("0.6"), Decimal("0.6"), [])
    assert set(row.bot_trades.all()) == set(trades)
    live = LivePosition.objects.get(account=netting.account, ticket=ticket)
    assert (live.match_method, live.bot_trade) == ("net", None)
    assert {t.matched_ticket for t in BotTrade.objects.filter(account=netting.account)} == {ticket}


def test_a_partial_close_is_one_volume_mismatch_and_a_full_close_makes_the_trades_missing(netting):
    trades, ticket = _three_entry_setup(netting)
    clock = Clock()
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())

    netting.terminal.sim_close_manual(ticket, volume="0.30")
    partial = account_sync(account=netting.account, gateway=netting.gateway, now=clock())

    assert partial.ok, partial.error
    (event,) = _active_events(netting.account)
    assert (event.kind, event.ticket, event.symbol, event.bot_trade) == (
        "volume_mismatch",
        ticket,
        "EURUSD",
        None,
    )
    assert event.detail == {
        "expected": "0.6",
        "actual": "0.3",
        "bot_trades": ["sig-7#1", "sig-7#2", "sig-7#3"],
    }
    row = NetMatch.objects.get(account=netting.account)
    assert row.divergences == [{"kind": "volume_mismatch", "expected": "0.6", "actual": "0.3"}]
    assert row.position_volume == Decimal("0.3")

    # The same condition on the next sync is the same event, not a new one.
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())
    assert [e.pk for e in _active_events(netting.account)] == [event.pk]

    netting.terminal.sim_close_manual(ticket, reason=mt5.ORDER_REASON_MOBILE)
    closed = account_sync(account=netting.account, gateway=netting.gateway, now=clock())

    assert (closed.matched, closed.missing) == (0, 3)
    missing = _active_events(netting.account)
    assert [(e.kind, e.bot_trade_id, e.ticket) for e in missing] == [
        ("missing_position", trade.pk, ticket) for trade in trades
    ]
    assert {e.detail["closed_by"] for e in missing} == {"manual"}
    assert {t.closed_by for t in BotTrade.objects.filter(account=netting.account)} == {CloseReason.MANUAL}
    event.refresh_from_db()
    assert event.gone_at is not None  # the volume mismatch went with the position
    assert not NetMatch.objects.filter(account=netting.account).exists()
    assert set(BotTrade.objects.filter(account=netting.account).values_list("net_match", flat=True)) == {None}


def test_a_net_match_event_goes_through_the_usual_lifecycle(netting):
    _trades, ticket = _three_entry_setup(netting)
    clock = Clock()
    netting.terminal.sim_close_manual(ticket, volume="0.30")
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())
    (event,) = _active_events(netting.account)
    staff = UserFactory()

    event_acknowledge(event=event, actor=staff, note="checking with the trader")
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())
    event.refresh_from_db()
    assert (event.state, event.gone_at, event.occurrences) == (EventState.ACKNOWLEDGED, None, 1)

    # The trader tops the position back up: the condition goes, the event is marked gone, then resolved.
    netting.terminal.sim_open_manual("EURUSD", "buy", "0.30")
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())
    event.refresh_from_db()
    assert event.gone_at is not None
    event_resolve(event=event, actor=staff, note="topped up")
    event.refresh_from_db()
    assert event.state == EventState.RESOLVED
    assert _active_events(netting.account) == []


def test_a_group_that_nets_to_zero_expects_no_position(netting):
    _register(netting.account, "sig-8", leg=1, side="buy", volume="0.20")
    _register(netting.account, "sig-8", leg=2, side="sell", volume="0.20")

    result = account_sync(account=netting.account, gateway=netting.gateway, now=Clock()())

    assert result.ok, result.error
    assert (result.matched, result.missing, result.unmatched) == (0, 0, 0)
    assert _active_events(netting.account) == []
    assert not NetMatch.objects.filter(account=netting.account).exists()


def test_a_stop_out_of_the_net_position_gives_the_group_its_close_reason(netting):
    trades, ticket = _three_entry_setup(netting)
    clock = Clock()
    account_sync(account=netting.account, gateway=netting.gateway, now=clock())
    netting.terminal.sim_close_manual(ticket, reason=mt5.ORDER_REASON_SL)

    account_sync(account=netting.account, gateway=netting.gateway, now=clock())

    assert {t.closed_by for t in BotTrade.objects.filter(pk__in=[t.pk for t in trades])} == {
        CloseReason.STOP_LOSS
    }


def test_a_manual_position_on_another_symbol_is_unmatched_on_netting_too(netting):
    _three_entry_setup(netting)
    manual = netting.terminal.sim_open_manual("GBPUSD", "sell", "0.10")

    result = account_sync(account=netting.account, gateway=netting.gateway, now=Clock()())

    assert (result.matched, result.unmatched) == (3, 1)
    (event,) = _active_events(netting.account)
    assert (event.kind, event.ticket) == ("unmatched_position", manual)


# ---------------------------------------------------------------- the ticket rule, live (hedging)


def test_a_bot_trade_whose_ticket_closed_stays_missing_and_the_manual_trade_stays_unmatched(sim_account):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    ticket = sim.terminal.sim_open_manual("EURUSD", "buy", "0.30", sl="1.08000", comment="s1")
    trade = _register(sim.account, "s1", ticket=ticket, tag="s1")
    clock = Clock()
    account_sync(account=sim.account, gateway=sim.gateway, now=clock())
    sim.terminal.sim_set_price("EURUSD", "1.07900", "1.07910")  # the stop loss fires
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    # The trader opens the same trade by hand, same comment, same price: it must not hide the stop-out.
    manual = sim.terminal.sim_open_manual("EURUSD", "buy", "0.30", comment="s1")

    for _ in range(2):  # and it stays so, sync after sync
        result = account_sync(account=sim.account, gateway=sim.gateway, now=clock())
        assert (result.matched, result.unmatched, result.missing) == (0, 1, 1)

    trade.refresh_from_db()
    assert (trade.closed_by, trade.matched_ticket) == (CloseReason.STOP_LOSS, ticket)
    kinds = {(e.kind, e.ticket) for e in _active_events(sim.account)}
    assert kinds == {("missing_position", ticket), ("unmatched_position", manual)}
    assert LivePosition.objects.get(account=sim.account, ticket=manual).bot_trade is None


def test_a_pairing_found_by_tag_sticks_to_its_ticket_once_that_position_closes(sim_account):
    sim = sim_account
    sim.terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    trade = _register(sim.account, "s1", tag="s1")
    first = sim.terminal.sim_open_manual("EURUSD", "buy", "0.30", comment="s1")
    clock = Clock()
    account_sync(account=sim.account, gateway=sim.gateway, now=clock())
    sim.terminal.sim_close_manual(first)
    sim.terminal.sim_open_manual("EURUSD", "buy", "0.30", comment="s1")

    result = account_sync(account=sim.account, gateway=sim.gateway, now=clock())

    assert (result.matched, result.unmatched, result.missing) == (0, 1, 1)
    trade.refresh_from_db()
    assert (trade.matched_ticket, trade.closed_by) == (first, CloseReason.MANUAL)
