"""account_sync with a scripted gateway: exact terminal answers, every branch of the bookkeeping."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingAccount
from integrations.mt5.errors import GatewayCircuitOpen, GatewayInvalidRequest
from pipeline.services import account_sync
from reconciliation.models import (
    AccountSync,
    BotTrade,
    CloseReason,
    EventState,
    LivePosition,
    ReconciliationEvent,
    SymbolOverride,
)
from reconciliation.selectors import live_position_list_for_account
from reconciliation.services import bot_trade_close, event_resolve
from reconciliation.tests.factories import BotTradeFactory
from reconciliation.tests.fakes import closing_deal, position

pytestmark = pytest.mark.django_db


def _events(account, **filters):
    return list(ReconciliationEvent.objects.filter(account=account, **filters).order_by("pk"))


def test_account_sync_stores_snapshot_positions_and_run(account, gateway):
    gateway.open_positions = [
        position(101),
        position(102, side="sell", symbol="GBPUSD", price_open="1.27000"),
    ]
    result = account_sync(account=account, gateway=gateway)

    assert result.ok
    assert result.positions == 2
    account.refresh_from_db()
    assert account.latest_snapshot == result.snapshot
    assert [p.ticket for p in live_position_list_for_account(account=account)] == [101, 102]
    run = AccountSync.objects.get(account=account)
    assert run.ok
    assert run.positions == 2
    assert run.unmatched == 2
    assert {e.ticket for e in _events(account, kind="unmatched_position")} == {101, 102}


def test_account_sync_matches_bot_trade_by_tag_and_remembers_the_ticket(account, gateway):
    trade = BotTradeFactory(account=account, tag="sig-41", magic=7001)
    gateway.open_positions = [position(50012, comment="sig-41", magic=7001, price_open="1.08507")]

    result = account_sync(account=account, gateway=gateway)

    assert result.matched == 1
    assert result.unmatched == 0
    assert result.missing == 0
    live = LivePosition.objects.get(account=account, ticket=50012)
    assert live.bot_trade == trade
    assert live.match_method == "tag"
    trade.refresh_from_db()
    assert trade.matched_ticket == 50012
    assert _events(account) == []


def test_divergence_is_one_event_for_as_long_as_it_lasts(account, gateway):
    trade = BotTradeFactory(account=account, ticket=777, sl=Decimal("1.08000"))
    gateway.open_positions = [position(777, sl="1.07500")]
    start = timezone.now()

    for step in range(3):
        account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10 * step))

    (event,) = _events(account)
    assert event.kind == "sl_mismatch"
    assert event.bot_trade == trade
    assert event.ticket == 777
    assert event.detail == {"expected": "1.08", "actual": "1.075"}
    assert event.first_seen_at == start
    assert event.last_seen_at == start + timedelta(seconds=20)
    assert event.gone_at is None
    assert event.state == EventState.OPEN

    gateway.open_positions = [position(777, sl="1.08000")]  # the trader fixed the SL
    result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=30))
    event.refresh_from_db()
    assert result.events_closed == 1
    assert event.gone_at == start + timedelta(seconds=30)
    assert event.last_seen_at == start + timedelta(seconds=20)


def test_event_that_comes_back_before_resolution_is_reopened_not_duplicated(account, gateway, support):
    BotTradeFactory(account=account, ticket=777, sl=Decimal("1.08000"))
    start = timezone.now()
    gateway.open_positions = [position(777, sl="1.07500")]
    account_sync(account=account, gateway=gateway, now=start)
    gateway.open_positions = [position(777, sl="1.08000")]
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))
    gateway.open_positions = [position(777, sl="1.07000")]
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=20))

    (event,) = _events(account)
    assert event.gone_at is None
    assert event.occurrences == 2
    assert event.detail["actual"] == "1.07"


def test_resolved_event_is_not_raised_again_while_it_persists(account, gateway, support):
    gateway.open_positions = [position(900)]
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)
    (event,) = _events(account)
    event_resolve(event=event, actor=support, note="Manual hedge, agreed with the trader.")

    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))
    (event,) = _events(account)
    assert event.state == EventState.RESOLVED
    assert event.gone_at is None

    gateway.open_positions = []
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=20))
    gateway.open_positions = [position(900)]  # (a ticket does not come back; this only checks the rule)
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=30))
    first, second = _events(account)
    assert first.state == EventState.RESOLVED
    assert first.gone_at == start + timedelta(seconds=20)
    assert second.state == EventState.OPEN
    assert second.gone_at is None


def test_missing_position_closed_by_stop_loss_from_the_deals(account, gateway):
    trade = BotTradeFactory(account=account, ticket=50011)
    gateway.history = [closing_deal(9001, position_id=50011, reason=4)]

    result = account_sync(account=account, gateway=gateway)

    assert result.missing == 1
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.STOP_LOSS
    (event,) = _events(account)
    assert event.kind == "missing_position"
    assert event.ticket == 50011
    assert event.detail == {"closed_by": "stop_loss", "signal_id": trade.signal_id, "leg": 1}


def test_missing_position_without_ticket_is_unknown_at_once(account, gateway):
    trade = BotTradeFactory(account=account)
    account_sync(account=account, gateway=gateway)
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.UNKNOWN
    assert "deals_for_position" not in gateway.calls


def test_close_reason_stays_pending_while_history_lags_then_resolves(account, gateway):
    trade = BotTradeFactory(account=account, ticket=50011)
    gateway.lagging = [closing_deal(9001, position_id=50011, reason=5)]
    gateway.lag_calls = 2
    start = timezone.now()

    account_sync(account=account, gateway=gateway, now=start)
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.PENDING
    assert trade.close_lookups == 1
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.PENDING
    assert trade.close_lookups == 2
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=20))
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.TAKE_PROFIT
    (event,) = _events(account)
    assert event.detail["closed_by"] == "take_profit"


def test_close_reason_settles_on_unknown_after_the_wait_and_enough_lookups(account, gateway, settings):
    settings.RECONCILIATION_CLOSE_REASON_WAIT_SECONDS = 30
    settings.RECONCILIATION_CLOSE_REASON_MIN_LOOKUPS = 3
    trade = BotTradeFactory(account=account, ticket=50011)
    start = timezone.now()
    for seconds, expected in ((0, "pending"), (10, "pending"), (20, "pending"), (30, "unknown")):
        account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=seconds))
        trade.refresh_from_db()
        assert trade.closed_by == expected, seconds
    assert gateway.calls.count("deals_for_position") == 4


def test_close_reason_lookup_failure_is_not_counted(account, gateway):
    trade = BotTradeFactory(account=account, ticket=50011)
    gateway.timeout("deals_for_position")
    result = account_sync(account=account, gateway=gateway)
    assert result.ok
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.PENDING
    assert trade.close_lookups == 0


def test_matched_trade_whose_position_closed_is_missing_not_rematched(account, gateway):
    trade = BotTradeFactory(account=account, tag="t1")
    gateway.open_positions = [position(1, comment="t1")]
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)
    # Position 1 closes by TP; a similar manual position 2 appears that the tolerance pass would take.
    gateway.open_positions = [position(2)]
    gateway.history = [closing_deal(9, position_id=1, reason=5)]
    result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert result.matched == 0
    assert result.missing == 1
    assert result.unmatched == 1
    trade.refresh_from_db()
    assert trade.closed_by == CloseReason.TAKE_PROFIT
    assert LivePosition.objects.get(account=account, ticket=2).bot_trade is None


def test_closing_the_bot_trade_makes_its_missing_event_go(account, gateway):
    trade = BotTradeFactory(account=account)
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)
    bot_trade_close(bot_trade=trade)
    account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))
    (event,) = _events(account)
    assert event.gone_at == start + timedelta(seconds=10)


def test_new_bot_trade_is_not_missing_during_the_grace(account, gateway, settings):
    settings.RECONCILIATION_MISSING_GRACE_SECONDS = 15
    BotTradeFactory(account=account)
    start = timezone.now() - timedelta(
        days=30
    )  # the syncs' clock (virtual in scenarios), not registration time
    for seconds, missing in ((0, 0), (10, 0), (15, 1)):
        result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=seconds))
        assert result.missing == missing, seconds
    assert len(_events(account)) == 1


def test_gone_positions_are_deleted(account, gateway):
    gateway.open_positions = [position(1), position(2)]
    account_sync(account=account, gateway=gateway)
    gateway.open_positions = [position(2)]
    account_sync(account=account, gateway=gateway)
    assert list(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == [2]


def test_positions_are_stored_exactly_whatever_their_text(account, gateway):
    """The upsert sends each column as an array literal built by hand: quotes, backslashes, commas, braces, the word
    NULL, non-ASCII text and missing levels must come back as the terminal gave them."""
    comments = ['say "hi"', "back\\slash\\", "a,b {c} 'd'", "NULL", "", "ünï €", " pad "]
    opened = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    gateway.open_positions = [
        position(10 + index, comment=comment, sl="1.07000" if index % 2 else None, time=opened)
        for index, comment in enumerate(comments)
    ]
    account_sync(account=account, gateway=gateway)

    stored = list(LivePosition.objects.filter(account=account).order_by("ticket"))
    assert [p.comment for p in stored] == comments
    assert [p.sl for p in stored] == [
        Decimal("1.07000") if index % 2 else None for index in range(len(comments))
    ]
    assert {p.opened_at for p in stored} == {opened}
    assert {p.price_open for p in stored} == {Decimal("1.08500")}


@pytest.mark.parametrize("call", ["account", "terminal", "positions"])
def test_failed_read_is_never_taken_as_no_positions(account, gateway, call):
    BotTradeFactory(account=account, tag="t1")
    gateway.open_positions = [position(1, comment="t1"), position(2)]
    start = timezone.now()
    account_sync(account=account, gateway=gateway, now=start)
    events_before = list(ReconciliationEvent.objects.values_list("pk", "gone_at", "last_seen_at"))
    gateway.open_positions = []
    gateway.timeout(call)

    result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert not result.ok
    assert result.retryable
    assert result.error_class == "GatewayTimeout"
    assert LivePosition.objects.filter(account=account).count() == 2
    assert list(ReconciliationEvent.objects.values_list("pk", "gone_at", "last_seen_at")) == events_before
    assert BotTrade.objects.get(account=account).closed_by == ""
    failed = AccountSync.objects.filter(account=account, ok=False).get()
    assert failed.error_class == "GatewayTimeout"
    assert "did not answer" in failed.error_message


def test_a_disconnected_terminal_is_a_failed_sync_that_concludes_nothing(account, gateway):
    """A terminal off its trade server answers, but with no positions: nothing is missing, no event opens or
    closes, live positions stay, the guards wait and say why."""
    from guards.models import AlertKind, GuardAlert, GuardState

    BotTradeFactory(account=account, tag="t1", ticket=1)
    gateway.open_positions = [position(1, comment="t1"), position(2)]
    start = timezone.now()
    assert account_sync(account=account, gateway=gateway, now=start).ok
    events_before = list(ReconciliationEvent.objects.values_list("pk", "gone_at", "last_seen_at"))
    peak_before = GuardState.objects.get(account=account).peak_equity
    gateway.open_positions, gateway.connected = [], False

    result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert not result.ok
    assert result.error_class == "TerminalDisconnected"
    assert sorted(LivePosition.objects.filter(account=account).values_list("ticket", flat=True)) == [1, 2]
    assert list(ReconciliationEvent.objects.values_list("pk", "gone_at", "last_seen_at")) == events_before
    trade = BotTrade.objects.get(account=account)
    assert (trade.closed_by, trade.missing_since) == ("", None)
    assert "positions" not in gateway.calls[-2:]  # what a disconnected terminal says is not even asked
    state = GuardState.objects.get(account=account)
    assert state.waiting_for_fresh
    assert state.peak_equity == peak_before
    waiting = GuardAlert.objects.get(account=account, kind=AlertKind.SNAPSHOT_STALE)
    assert "not connected to its trade server" in waiting.detail["reason"]
    assert AccountSync.objects.filter(account=account, ok=False).get().error_class == "TerminalDisconnected"


def test_an_unreadable_deal_history_does_not_fail_the_sync(account, gateway):
    """Positions were read on a connected terminal: they count. Close reasons, which need the history, wait."""
    BotTradeFactory(account=account, tag="t1", ticket=1)
    gateway.open_positions = [position(1, comment="t1")]
    start = timezone.now()
    assert account_sync(account=account, gateway=gateway, now=start).ok
    gateway.open_positions = []
    gateway.timeout("deals")

    result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=10))

    assert result.ok
    assert result.missing == 1
    assert not LivePosition.objects.filter(account=account).exists()
    assert BotTrade.objects.get(account=account).closed_by == CloseReason.PENDING  # not concluded "unknown"


def test_open_circuit_fails_the_sync_cleanly(account, gateway):
    gateway.fail["account"] = GatewayCircuitOpen("circuit open", call="account_info")
    result = account_sync(account=account, gateway=gateway)
    assert not result.ok
    assert result.error_class == "GatewayCircuitOpen"


def test_a_failed_sync_tells_the_guards_they_wait_and_is_never_a_reading(account, gateway):
    from guards.models import AlertKind, GuardAlert, GuardState

    gateway.open_positions = [position(1)]
    start = timezone.now()
    assert account_sync(account=account, gateway=gateway, now=start).ok
    before = GuardState.objects.get(account=account)
    gateway.timeout("account")
    calls_before = len(gateway.calls)

    for seconds in (10, 20):
        result = account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=seconds))
        assert not result.ok
        assert result.guards_error == ""

    state = GuardState.objects.get(account=account)
    assert state.waiting_for_fresh is True
    assert state.evaluated_at == start + timedelta(seconds=20)
    # Not a reading: the last evaluated snapshot, the peak and the counts are those of the successful sync.
    assert (state.last_snapshot_id, state.last_snapshot_at, state.peak_equity) == (
        before.last_snapshot_id,
        before.last_snapshot_at,
        before.peak_equity,
    )
    assert (state.drawdown_warning_count, state.drawdown_critical_count) == (
        before.drawdown_warning_count,
        before.drawdown_critical_count,
    )
    assert state.market == before.market  # the market guard (it needs the terminal) did not run
    stale = GuardAlert.objects.filter(account=account, kind=AlertKind.SNAPSHOT_STALE)
    assert stale.count() == 1  # said once per waiting spell
    assert "terminal could not be read" in stale.get().message
    assert gateway.calls[calls_before:] == ["account", "account"]  # the guards made no terminal call

    gateway.fail.clear()
    assert account_sync(account=account, gateway=gateway, now=start + timedelta(seconds=30)).ok
    assert GuardState.objects.get(account=account).waiting_for_fresh is False


def test_a_non_finite_number_is_refused_by_reconciliation_and_the_guards_still_run(account, gateway):
    from dataclasses import replace

    from guards.models import GuardState

    gateway.open_positions = [replace(position(1), price_current=Decimal("NaN"))]
    result = account_sync(account=account, gateway=gateway)
    assert result.ok
    assert result.reconciliation_error.startswith("ValidationError")
    assert not LivePosition.objects.filter(account=account).exists()  # nothing half-written
    run = AccountSync.objects.get(account=account)
    assert run.reconciliation_error.startswith("ValidationError")
    assert run.guards_error == ""
    assert GuardState.objects.get(account=account).last_snapshot_id == result.snapshot.pk


def test_a_symbol_the_terminal_cannot_describe_stops_neither_the_snapshot_nor_the_drawdown_guard(
    account, gateway
):
    from guards.models import GuardState

    gateway.open_positions = [position(1, symbol="NOPE")]
    gateway.balance = Decimal("9000.00")
    result = account_sync(account=account, gateway=gateway)
    assert result.ok
    assert result.reconciliation_error.startswith("SymbolNotDescribed")
    assert TradingAccount.objects.get(pk=account.pk).latest_snapshot_id == result.snapshot.pk
    state = GuardState.objects.get(account=account)
    assert (state.last_snapshot_id, state.peak_equity) == (result.snapshot.pk, Decimal("9000.00"))
    assert AccountSync.objects.get(account=account).reconciliation_error.startswith("SymbolNotDescribed")


def test_bot_trade_on_symbol_without_positions_is_missing_not_an_error(account, gateway):
    gateway.fail["symbol"] = GatewayInvalidRequest("unknown", call="symbol_info")
    BotTradeFactory(account=account, symbol="NZDCAD")
    result = account_sync(account=account, gateway=gateway)
    assert result.ok
    assert result.missing == 1


def test_override_maps_broker_suffix_and_pip(account, gateway):
    SymbolOverride.objects.create(server=account.server, name="XAUUSD.m", canonical="XAUUSD")
    trade = BotTradeFactory(
        account=account, symbol="XAUUSD", entry_price=Decimal("2000.00"), volume=Decimal("1")
    )
    # 0.15 away = 1.5 pips with the seeded XAUUSD pip 0.1 (within 2), but 15 points = 15 "pips" without it.
    gateway.open_positions = [position(5, symbol="XAUUSD.m", price_open="2000.15", volume="1")]
    result = account_sync(account=account, gateway=gateway)
    assert result.matched == 1
    live = LivePosition.objects.get(account=account)
    assert live.bot_trade == trade
    assert live.canonical_symbol == "XAUUSD"
    assert live.match_method == "fuzzy"


def test_sync_of_one_account_does_not_touch_another(account, gateway):
    other = TradingAccount.objects.create(owner=account.owner, login=account.login + 1, server=account.server)
    gateway.open_positions = [position(1)]
    account_sync(account=account, gateway=gateway)
    assert not LivePosition.objects.filter(account=other).exists()
