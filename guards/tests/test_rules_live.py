"""Rule sets evaluated live in the guard pipeline (issue #16 steps 3-4): every fresh snapshot moves the account's
rules state; warning, breach and objectives met are audited alerts; a breach closes everything and halts at once,
naming the rule and the limit; close-only makes sizing refuse; an operator lifts it with a reason. And the replay:
the stored snapshots and the terminal's deals through `rules_case`'s evaluation give the live state."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AccountSnapshot
from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState, GuardStatus
from guards.selectors import account_guard_status
from guards.services import account_guards_evaluate
from guards.services.liquidation import account_liquidate
from guards.tests.conftest import START, evaluate_reading, make_snapshot, reading_of
from integrations.mt5.types import Deal
from pipeline.services import account_sync
from risk.services import trade_setup_size
from rules import evaluation
from rules.models import AccountRulesState, RuleSet
from rules.services import account_rule_set_assign, rule_set_create
from rules.tracking import state_from_json, trades_from_deals

pytestmark = pytest.mark.django_db


def _assign(account, preset="two_step", *, initial="10000", start=START, rule_set=None):
    return account_rule_set_assign(
        actor=None,
        account=account,
        rule_set=rule_set or RuleSet.objects.get(preset=preset),
        initial_balance=initial,
        start=start,
        reason="test",
    )


def _kinds(account):
    return list(
        GuardAlert.objects.filter(account=account, guard="rules")
        .order_by("created_at", "pk")
        .values_list("kind", flat=True)
    )


def _deal(ticket, *, position, entry, at, profit="0", commission="0", swap="0", fee="0", type_=0, volume="1"):
    return Deal(
        ticket=ticket,
        order=ticket,
        position_id=position,
        symbol="EURUSD",
        type=type_,
        entry=entry,
        reason=0,
        volume=Decimal(volume),
        price=Decimal("1.1"),
        commission=Decimal(commission),
        swap=Decimal(swap),
        profit=Decimal(profit),
        fee=Decimal(fee),
        magic=0,
        comment="",
        time=at,
        server_time=at,
        time_epoch=int(at.timestamp()),
        time_msc=int(at.timestamp() * 1000),
    )


def test_warning_then_breach_liquidates_at_once_naming_the_rule_and_the_limit(account, clock, dispatched):
    _assign(account)
    for second, equity in ((0, "10000"), (10, "9590"), (20, "9499.99")):
        snapshot = make_snapshot(account, equity=equity, at=START + timedelta(seconds=second))
        clock.set(snapshot.taken_at)
        evaluate_reading(account=account, snapshot=snapshot)
    row = AccountRulesState.objects.get(account=account)
    assert (row.status, row.level) == ("breached", "breached")
    assert row.breach == {
        "rule": "daily_loss",
        "time": "2026-03-02T07:00:20Z",
        "equity": 9499.99,
        "limit": 9500.0,
    }
    assert _kinds(account) == ["rule_level", "rule_breach", "liquidation_scheduled"]
    breach = GuardAlert.objects.get(account=account, kind=AlertKind.RULE_BREACH)
    assert "daily loss limit breached" in breach.message
    assert "9500" in breach.message
    assert "Two-step challenge" in breach.message
    state = GuardState.objects.get(account=account)
    assert (state.status, state.trip_guard) == (GuardStatus.TRIPPED, "rules")
    assert dispatched.liquidations == [
        {"account_id": account.pk, "trip_id": str(state.trip_id), "countdown": 0.0}
    ]


def test_warning_level_and_headroom_are_kept_per_snapshot(account, clock, dispatched):
    _assign(account)
    snapshot = make_snapshot(account, equity="9590", at=START)
    evaluate_reading(account=account, snapshot=snapshot)
    row = AccountRulesState.objects.get(account=account)
    assert row.level == "warning"
    assert (row.daily_limit, row.permitted_loss_today) == (Decimal("9500"), Decimal("90"))
    assert (row.max_loss_limit, row.permitted_loss_total) == (Decimal("9000"), Decimal("590"))
    assert (row.headroom, row.daily_used_percent, row.total_used_percent) == (
        Decimal("90"),
        Decimal("82.00"),
        Decimal("41.00"),
    )
    assert row.next_reset == datetime(2026, 3, 2, 23, tzinfo=UTC)  # midnight Prague
    warning = GuardAlert.objects.get(account=account, kind=AlertKind.RULE_LEVEL)
    assert (warning.level, warning.value) == ("warning", Decimal("82"))


def test_a_rules_liquidation_is_final_even_if_equity_recovers(account, sim, gateway, clock, dispatched):
    _assign(account)
    position = sim.sim_open_manual("EURUSD", "buy", "0.1")
    snapshot = make_snapshot(account, equity="9400", at=START)
    evaluate_reading(account=account, snapshot=snapshot, positions=list(gateway.positions()))
    state = GuardState.objects.get(account=account)
    assert state.trip_guard == "rules"
    result = account_liquidate(
        account=account, trip_id=str(state.trip_id), gateway=gateway
    )  # equity ~10000 now
    assert result.outcome in ("closed", "incomplete")
    state.refresh_from_db()
    assert state.status == GuardStatus.HALTED
    assert [c.ticket for c in result.closes] == [position]
    assert list(CloseIntent.objects.filter(account=account).values_list("trigger", flat=True)) == ["rules"]


def test_close_only_on_warning_refuses_sizing_until_an_operator_lifts_it(
    account, clock, dispatched, trader, support, api_client
):
    rule_set = rule_set_create(
        actor=None, name="Close-only desk", preset="two_step", reason="t", close_only_on_warning=True
    )
    _assign(account, rule_set=rule_set)
    snapshot = make_snapshot(account, equity="9590", at=START)
    evaluate_reading(account=account, snapshot=snapshot)
    row = AccountRulesState.objects.get(account=account)
    assert row.close_only is True
    assert "close-only" in GuardAlert.objects.get(account=account, kind=AlertKind.RULE_LEVEL).message
    log = trade_setup_size(
        account=account,
        actor=trader,
        symbol="EURUSD",
        side="buy",
        entries=[Decimal("1.1")],
        sl=Decimal("1.09"),
    )
    assert (log.approved, log.reason) == (False, "close_only")
    assert log.inputs["rules"]["close_only"] is True

    url = reverse("rules-api:close-only-lift", kwargs={"account_id": account.pk})
    api_client.force_authenticate(trader)
    assert api_client.post(url, {"reason": "mine"}, format="json").status_code == 403
    api_client.force_authenticate(support)
    assert api_client.post(url, {}, format="json").status_code == 400
    response = api_client.post(url, {"reason": "Spoke with the trader"}, format="json")
    assert response.status_code == 200, response.json()
    row.refresh_from_db()
    assert (row.close_only, row.close_only_lifted_by, row.close_only_lift_reason) == (
        False,
        support,
        "Spoke with the trader",
    )
    assert api_client.post(url, {"reason": "again"}, format="json").status_code == 400  # not close-only now
    # still at warning: a later snapshot at warning does not make it close-only again
    snapshot = make_snapshot(account, equity="9580", at=START + timedelta(seconds=10))
    clock.set(snapshot.taken_at)
    evaluate_reading(account=account, snapshot=snapshot)
    row.refresh_from_db()
    assert row.close_only is False


def test_headroom_caps_live_sizing(account, clock, dispatched, trader):
    _assign(account)
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="9590", at=START))
    log = trade_setup_size(
        account=account,
        actor=trader,
        symbol="EURUSD",
        side="buy",
        entries=[Decimal("1.1")],
        sl=Decimal("1.09"),
        gateway=_NoTerminal(),
    )
    assert log.inputs["rules"]["headroom"] == "90.00"


class _NoTerminal:
    def symbol(self, name):
        from integrations.mt5.errors import GatewayUnavailable

        raise GatewayUnavailable("no terminal in this test")


def test_objectives_met_is_an_alert_and_a_mark_nothing_closed(account, clock, dispatched):
    rule_set = rule_set_create(actor=None, name="Quick", preset="two_step", reason="t", min_trading_days=1)
    _assign(account, rule_set=rule_set)
    opened = START + timedelta(minutes=1)
    deals = [
        _deal(1, position=11, entry=0, at=opened, commission="-3"),
        _deal(2, position=11, entry=1, at=opened + timedelta(minutes=5), profit="1103"),
    ]
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="10000", at=START))
    at = START + timedelta(minutes=10)
    clock.set(at)
    evaluate_reading(
        account=account, snapshot=make_snapshot(account, balance="11100", equity="11100", at=at), deals=deals
    )
    row = AccountRulesState.objects.get(account=account)
    assert (row.status, row.trading_days, row.profit_target_met) == ("passed", 1, True)
    assert row.objectives_met_at == at
    days = state_from_json(
        row.account.rule_set_assignment.rule_set.as_rules(initial_balance=Decimal(10000), start=START),
        row.state,
    ).days
    assert days[0].closed_profit == Decimal("1100")  # profit + commission of the trade's deals
    assert _kinds(account) == ["objectives_met"]
    assert GuardState.objects.get(account=account).status == GuardStatus.NORMAL
    # the same deals again (an overlapping history window) count once
    at += timedelta(seconds=10)
    clock.set(at)
    evaluate_reading(
        account=account, snapshot=make_snapshot(account, balance="11100", equity="11100", at=at), deals=deals
    )
    row.refresh_from_db()
    assert row.state["days"][0][5] == "1100"
    assert _kinds(account) == ["objectives_met"]


def test_a_deposit_moves_the_bases_not_the_result(account, clock, dispatched):
    _assign(account)
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="10000", at=START))
    at = START + timedelta(minutes=1)
    clock.set(at)
    deposit = _deal(7, position=0, entry=0, at=at - timedelta(seconds=5), profit="5000", type_=2)
    evaluate_reading(
        account=account,
        snapshot=make_snapshot(account, balance="15000", equity="15000", at=at),
        deals=[deposit],
    )
    row = AccountRulesState.objects.get(account=account)
    assert (row.daily_limit, row.max_loss_limit, row.level) == (Decimal("14500"), Decimal("14000"), "normal")
    assert row.profit_target_met is False


def test_a_changed_assignment_applies_from_the_next_snapshot(account, clock, dispatched):
    _assign(account)
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="9590", at=START))
    assert AccountRulesState.objects.get(account=account).level == "warning"
    _assign(account, initial="20000")  # recorded; nothing evaluated yet
    assert AccountRulesState.objects.get(account=account).assignment_revision == 1
    at = START + timedelta(seconds=10)
    clock.set(at)
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="9590", at=at))
    row = AccountRulesState.objects.get(account=account)
    # under 20 000 the same equity is far below the 18 000 floor of the max loss... at 9 590 it is a breach
    assert (row.assignment_revision, row.status) == (2, "breached")


def test_accounts_without_limits_get_no_rules_state(account, clock, dispatched):
    _assign(account, preset="classic")
    evaluate_reading(account=account, snapshot=make_snapshot(account, equity="5000", at=START))
    assert not AccountRulesState.objects.filter(account=account).exists()
    assert _kinds(account) == []


def test_rules_add_one_query_to_the_guards(account, sim, gateway, clock, dispatched):
    _assign(account)
    for second in (0, 10):
        evaluate_reading(
            account=account,
            snapshot=make_snapshot(account, equity=9_990, at=START + timedelta(seconds=second)),
        )
    snapshot = make_snapshot(account, equity=9_990, at=START + timedelta(seconds=20))
    clock.set(snapshot.taken_at)
    reading = reading_of(snapshot)
    with CaptureQueriesContext(connection) as queries:
        result = account_guards_evaluate(account=account, snapshot=snapshot, reading=reading)
    assert result.fresh
    sql = [q["sql"] for q in queries]
    assert len(sql) <= 3, [s[:120] for s in sql]
    assert "FOR UPDATE" in sql[0]
    assert "rules_accountrulesstate" in sql[0]
    assert sum(s.startswith('UPDATE "rules_accountrulesstate"') for s in sql) == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_replay_of_stored_snapshots_and_deals_equals_the_live_state(account, sim, gateway, clock, dispatched):
    """The live evaluation, snapshot by snapshot through the real sync, against `rules_case`'s evaluation of the
    stored snapshots and the trades built from the terminal's deal history."""
    assignment = _assign(account, preset="one_step")

    def sync(at):
        sim.sim_set_time(at)
        result = account_sync(account=account, gateway=gateway, now=at)
        assert result.guards_error in ("", None), result

    t = START
    sync(t)
    first = sim.sim_open_manual("EURUSD", "buy", "1.0")
    for minutes, bid in ((5, "1.08400"), (20, "1.08300"), (40, "1.08600")):
        t = START + timedelta(minutes=minutes)
        sim.sim_set_time(t)
        sim.sim_set_price("EURUSD", bid)
        sync(t)
    sim.sim_close_manual(first)
    sync(t + timedelta(minutes=1))
    # next Prague day: two trades, one partly closed
    t = datetime(2026, 3, 3, 8, tzinfo=UTC)
    sim.sim_set_time(t)
    second = sim.sim_open_manual("EURUSD", "sell", "0.5")
    sync(t)
    third = sim.sim_open_manual("EURUSD", "buy", "0.3")
    sim.sim_set_time(t + timedelta(minutes=10))
    sim.sim_set_price("EURUSD", "1.08200")
    sync(t + timedelta(minutes=10))
    sim.sim_close_manual(second, volume=Decimal("0.2"))
    sync(t + timedelta(minutes=11))
    sim.sim_close_manual(second)
    sync(t + timedelta(minutes=12))
    sim.sim_set_price("EURUSD", "1.08900")
    sync(t + timedelta(hours=2))
    assert third  # still open at the end

    rules = assignment.rule_set.as_rules(initial_balance=assignment.initial_balance, start=assignment.start)
    readings = [
        evaluation.Reading(s.taken_at, s.balance, s.equity)
        for s in AccountSnapshot.objects.filter(account=account).order_by("taken_at", "pk")
    ]
    trades = trades_from_deals(gateway.deals(since=START - timedelta(days=1), until=t + timedelta(days=1)))
    offline = evaluation.evaluate(rules=rules, readings=readings, trades=trades).to_result()
    row = AccountRulesState.objects.get(account=account)
    live = state_from_json(rules, row.state).to_result()
    assert live == offline
    assert offline["trading_days"] == 2
    assert len(offline["days"]) == 2
    assert offline["days"][1]["closed_profit"] != 0


def test_the_guard_summary_shows_the_headroom_and_objectives(
    account, clock, dispatched, api_client, trader, django_capture_on_commit_callbacks
):
    url = reverse("guards-api:account-guards", kwargs={"account_id": account.pk})
    api_client.force_authenticate(trader)
    assert api_client.get(url).json()["rules"] is None
    with django_capture_on_commit_callbacks(execute=True):
        _assign(account)
    body = api_client.get(url).json()["rules"]  # assigned: the cached summary was invalidated
    assert (body["rule_set"], body["evaluated"], body["permitted_loss_today"]) == (
        "Two-step challenge",
        False,
        None,
    )
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_reading(account=account, snapshot=make_snapshot(account, equity="9590", at=START))
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        body = api_client.get(url).json()["rules"]
    assert (body["level"], body["permitted_loss_today"], body["permitted_loss_total"]) == (
        "warning",
        "90.00",
        "590.00",
    )
    assert (body["daily_used_percent"], body["total_used_percent"]) == ("82.0000", "41.0000")
    assert body["next_reset"] == "2026-03-02T23:00:00Z"  # the evaluated boundary, still ahead
    # No reading since: two days later the summary counts to the next boundary after now.
    later = account_guard_status(account=account, now=datetime(2026, 3, 4, 9, tzinfo=UTC))["rules"]
    assert later["next_reset"] == datetime(2026, 3, 4, 23, tzinfo=UTC)
    assert (body["trading_days"], body["min_trading_days"], body["profit_target_percent"]) == (
        0,
        4,
        "10.0000",
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_steady_sync_under_a_rule_set_costs_no_extra_statement(account, sim, gateway, clock):
    """The rule set's rows come with the guards' lock and its state's UPDATE goes with the sync's last statement:
    a steady sync of an account under a rule set sends as many statements as one without."""
    from pipeline.services import sync as sync_module  # noqa: F401  (the sync under measure)

    def steady_statements(offset: int) -> list[str]:
        for second in (0, 10, 20):  # warm: state rows, symbol tables, market memory
            at = START + timedelta(seconds=offset + second)
            sim.sim_set_time(at)
            account_sync(account=account, gateway=gateway, now=at)
        at = START + timedelta(seconds=offset + 30)
        sim.sim_set_time(at)
        with CaptureQueriesContext(connection) as whole:
            assert account_sync(account=account, gateway=gateway, now=at).ok
        return [q["sql"] for q in whole]

    sim.sim_open_manual("EURUSD", "buy", "0.1")
    without = steady_statements(0)
    _assign(account, start=START + timedelta(seconds=35))
    under = steady_statements(40)
    assert AccountRulesState.objects.get(account=account).last_snapshot_id is not None
    assert len(under) == len(without), (without, under)
    last = under[under.index("COMMIT") - 1]
    assert 'UPDATE "rules_accountrulesstate"' in last, last
