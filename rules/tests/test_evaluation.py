"""The pure rule-set evaluation (shared/spec/rules.md): days across DST, bases, limits, trailing locks, objectives."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from rules.evaluation import (
    DailyLoss,
    InvalidRuleSet,
    MaxLoss,
    Reading,
    RuleSet,
    RulesState,
    Trade,
    evaluate,
)

D = Decimal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def r(when: str, balance: object, equity: object | None = None) -> Reading:
    return Reading(
        time=at(when), balance=D(str(balance)), equity=D(str(balance if equity is None else equity))
    )


def rules(**overrides: object) -> RuleSet:
    values: dict[str, object] = {
        "initial_balance": D(100000),
        "start": at("2026-03-02T07:00:00Z"),
        "timezone": "Europe/Prague",
        "daily_loss": DailyLoss(percent=D(5)),
        "max_loss": MaxLoss(percent=D(10)),
    }
    return RuleSet(**(values | overrides))  # type: ignore[arg-type]


# ---------------------------------------------------------------- days


@pytest.mark.parametrize(
    ("zone", "reset", "day", "expected"),
    [
        # Europe/Prague: CET (+1) before 2026-03-29 01:00Z, CEST (+2) after.
        ("Europe/Prague", "00:00", "2026-03-29", "2026-03-28T23:00:00+00:00"),
        ("Europe/Prague", "00:00", "2026-03-30", "2026-03-29T22:00:00+00:00"),
        # A reset inside the spring-forward gap (02:00 -> 03:00): fold=0 keeps the offset before the change.
        ("Europe/Prague", "02:30", "2026-03-29", "2026-03-29T01:30:00+00:00"),
        # A reset inside the autumn overlap (03:00 -> 02:00 on 2026-10-25): the first occurrence.
        ("Europe/Prague", "02:30", "2026-10-25", "2026-10-25T00:30:00+00:00"),
        ("Europe/Prague", "00:00", "2026-10-26", "2026-10-25T23:00:00+00:00"),
        # New York 17:00: EST (-5) until 2026-03-08, EDT (-4) after.
        ("America/New_York", "17:00", "2026-03-06", "2026-03-06T22:00:00+00:00"),
        ("America/New_York", "17:00", "2026-03-09", "2026-03-09T21:00:00+00:00"),
        ("UTC", "00:00", "2026-03-02", "2026-03-02T00:00:00+00:00"),
    ],
)
def test_day_start_follows_the_zone_and_its_dst_changes(
    zone: str, reset: str, day: str, expected: str
) -> None:
    hour, minute = map(int, reset.split(":"))
    rule_set = rules(timezone=zone, reset_time=time(hour, minute))
    assert rule_set.day_start(date.fromisoformat(day)).isoformat() == expected


@pytest.mark.parametrize(
    ("zone", "reset", "moment", "expected"),
    [
        (
            "Europe/Prague",
            "00:00",
            "2026-03-01T23:00:00Z",
            "2026-03-02",
        ),  # the boundary itself is the new day
        ("Europe/Prague", "00:00", "2026-03-01T22:59:59Z", "2026-03-01"),
        (
            "America/New_York",
            "17:00",
            "2026-03-06T21:59:00Z",
            "2026-03-05",
        ),  # 16:59 EST: still Thursday's day
        ("America/New_York", "17:00", "2026-03-06T22:00:00Z", "2026-03-06"),
        ("America/New_York", "17:00", "2026-03-09T21:30:00Z", "2026-03-09"),  # 17:30 EDT
        # 03:00 CEST on 2026-03-29 is before that date's 02:30-in-the-gap boundary (01:30Z): the previous day.
        ("Europe/Prague", "02:30", "2026-03-29T01:00:00Z", "2026-03-28"),
        ("Europe/Prague", "02:30", "2026-03-29T01:30:00Z", "2026-03-29"),
    ],
)
def test_a_moment_belongs_to_the_day_that_contains_it(
    zone: str, reset: str, moment: str, expected: str
) -> None:
    hour, minute = map(int, reset.split(":"))
    assert rules(timezone=zone, reset_time=time(hour, minute)).day_of(at(moment)).isoformat() == expected


def test_days_across_the_spring_change_keep_local_midnight() -> None:
    rule_set = rules(start=at("2026-03-28T08:00:00Z"))
    state = evaluate(
        rules=rule_set,
        readings=[r("2026-03-28T08:00:00Z", 100000), r("2026-03-30T08:00:00Z", 100500, 100400)],
        trades=[],
    )
    days = state.to_result()["days"]
    assert [(d["day"], d["start"]) for d in days] == [
        ("2026-03-28", "2026-03-27T23:00:00Z"),
        ("2026-03-29", "2026-03-28T23:00:00Z"),  # no reading that day: still listed
        ("2026-03-30", "2026-03-29T22:00:00Z"),
    ]
    assert days[1]["lowest_equity"] is None
    assert days[1]["base"] == 100000.0
    assert state.to_result()["headroom"]["next_reset"] == "2026-03-30T22:00:00Z"


# ---------------------------------------------------------------- bases and limits


def test_the_day_base_is_taken_at_the_boundary_from_the_chosen_value() -> None:
    readings = [r("2026-03-02T07:00:00Z", 100000), r("2026-03-02T20:00:00Z", 100000, 103000)]
    readings.append(r("2026-03-03T09:00:00Z", 100000, 102500))
    for base, expected in (("balance", 100000), ("equity", 103000), ("max", 103000)):
        state = evaluate(
            rules=rules(daily_loss=DailyLoss(percent=D(5), base=base)), readings=readings, trades=[]
        )
        assert state.days[1].base == expected
        assert state.daily_limit() == D(expected) - 5000
    state = evaluate(
        rules=rules(daily_loss=DailyLoss(percent=D(4), of="base", base="equity")),
        readings=readings,
        trades=[],
    )
    assert state.daily_limit() == D(103000) - D("0.04") * 103000  # of the base, not the initial balance


def test_a_reading_exactly_at_the_boundary_sets_that_days_base() -> None:
    readings = [
        r("2026-03-02T07:00:00Z", 100000),
        r("2026-03-02T23:00:00Z", 98000),
        r("2026-03-03T05:00:00Z", 98000),
    ]
    state = evaluate(rules=rules(), readings=readings, trades=[])
    assert state.days[1].base == 98000
    assert state.daily_limit() == 93000


def test_eod_trailing_moves_only_at_a_boundary_and_locks_at_the_initial_balance() -> None:
    one_step = rules(max_loss=MaxLoss(percent=D(6), mode="eod_trailing"), daily_loss=None)
    readings = [r("2026-03-02T07:00:00Z", 100000), r("2026-03-02T15:00:00Z", 104000)]
    state = evaluate(rules=one_step, readings=readings, trades=[])
    assert state.max_loss_limit() == 94000  # intraday gains do not move it
    readings.append(r("2026-03-03T09:00:00Z", 104000))
    state = evaluate(rules=one_step, readings=readings, trades=[])
    assert state.max_loss_limit() == 98000
    readings += [r("2026-03-03T15:00:00Z", 108000), r("2026-03-04T09:00:00Z", 108000, 101000)]
    state = evaluate(rules=one_step, readings=readings, trades=[])
    assert state.max_loss_limit() == 100000  # 108000 - 6000 = 102000, locked at the initial balance
    assert state.summary().headroom.permitted_loss_total == 1000  # type: ignore[union-attr]
    unlocked = rules(
        max_loss=MaxLoss(percent=D(6), mode="eod_trailing", lock_at_initial=False), daily_loss=None
    )
    state = evaluate(rules=unlocked, readings=readings, trades=[])
    assert state.breach is not None
    assert (state.breach.rule, state.breach.limit) == ("max_loss", 102000)


def test_intraday_trailing_follows_the_best_equity_including_the_current_reading() -> None:
    rule_set = rules(
        max_loss=MaxLoss(percent=D(5), mode="intraday_trailing", lock_at_initial=False), daily_loss=None
    )
    readings = [r("2026-03-02T07:00:00Z", 100000), r("2026-03-02T08:00:00Z", 100000, 103000)]
    state = evaluate(rules=rule_set, readings=readings, trades=[])
    assert state.max_loss_limit() == 98000
    readings.append(r("2026-03-02T09:00:00Z", 100000, 97999))
    state = evaluate(rules=rule_set, readings=readings, trades=[])
    assert state.breach is not None
    assert state.breach.limit == 98000


def test_the_daily_limit_is_checked_first_and_the_breach_ends_the_evaluation() -> None:
    readings = [
        r("2026-03-02T07:00:00Z", 100000),
        r("2026-03-02T08:00:00Z", 100000, 89000),  # below 95000 and 90000 at once
        r("2026-03-02T09:00:00Z", 100000, 100000),
    ]
    trades = [
        Trade(open_time=at("2026-03-02T07:30:00Z"), close_time=at("2026-03-02T08:00:00Z"), profit=D(-11000)),
        Trade(open_time=at("2026-03-02T08:30:00Z"), close_time=None, profit=D(0)),
    ]
    result = evaluate(rules=rules(), readings=readings, trades=trades).to_result()
    assert result["status"] == result["level"] == "breached"
    assert result["breach"] == {
        "rule": "daily_loss",
        "time": "2026-03-02T08:00:00Z",
        "equity": 89000.0,
        "limit": 95000.0,
    }
    assert result["days"][0]["closed_profit"] == -11000.0  # a close at the breaching reading counts
    assert result["days"][0]["lowest_equity"] == 89000.0
    assert result["headroom"]["permitted_loss_today"] == 0.0
    assert result["headroom"]["daily_used_percent"] == 100.0


def test_equity_exactly_at_a_limit_is_not_a_breach() -> None:
    state = evaluate(rules=rules(), readings=[r("2026-03-02T07:00:00Z", 100000, 95000)], trades=[])
    assert state.breach is None
    result = state.to_result()
    assert result["level"] == "warning"
    assert result["headroom"]["daily_used_percent"] == 100.0
    assert result["headroom"]["total_used_percent"] == 50.0


def test_used_percents_round_half_up_and_warn_at_the_threshold() -> None:
    state = evaluate(rules=rules(), readings=[r("2026-03-02T07:00:00Z", 100000, 96000)], trades=[])
    headroom = state.to_result()["headroom"]
    assert (headroom["daily_used_percent"], headroom["total_used_percent"]) == (80.0, 40.0)
    assert state.summary().level == "warning"
    state = evaluate(rules=rules(), readings=[r("2026-03-02T07:00:00Z", 100000, "96000.5")], trades=[])
    assert state.summary().headroom.daily_used_percent == D("79.99")  # type: ignore[union-attr]
    assert state.summary().level == "normal"
    # 79.995 rounds half-up to 80.00, which is at the threshold.
    state = evaluate(rules=rules(), readings=[r("2026-03-02T07:00:00Z", 100000, "96000.25")], trades=[])
    assert state.summary().headroom.daily_used_percent == D("80.00")  # type: ignore[union-attr]
    assert state.summary().level == "warning"


def test_limits_off_report_nulls() -> None:
    state = evaluate(
        rules=rules(daily_loss=None, max_loss=None), readings=[r("2026-03-02T07:00:00Z", 100000)], trades=[]
    )
    result = state.to_result()
    assert result["days"][0]["base"] is None
    assert result["days"][0]["daily_limit"] is None
    assert all(
        result["headroom"][k] is None for k in ("daily_limit", "permitted_loss_today", "max_loss_limit")
    )
    assert state.summary().headroom.amount is None  # type: ignore[union-attr]


# ---------------------------------------------------------------- objectives


def _passing_history() -> tuple[list[Reading], list[Trade]]:
    readings, trades = [r("2026-03-02T07:00:00Z", 100000)], []
    balance = 100000
    for index, profit in enumerate((3000, 3000, 2500, 2000)):
        day = 2 + index
        balance += profit
        trades.append(Trade(at(f"2026-03-0{day}T08:00:00Z"), at(f"2026-03-0{day}T09:00:00Z"), D(profit)))
        readings.append(r(f"2026-03-0{day}T09:00:00Z", balance))
    return readings, trades


def test_objectives_met_pass_the_account() -> None:
    readings, trades = _passing_history()
    rule_set = rules(profit_target_percent=D(10), min_trading_days=4, best_day_percent=D(50))
    result = evaluate(rules=rule_set, readings=readings, trades=trades).to_result()
    assert result["status"] == "passed"
    assert result["trading_days"] == 4
    assert result["profit_target_met"] is True
    assert result["best_day_share"] == 28.57  # 3000 / 10500


def test_each_objective_holds_the_pass_back() -> None:
    readings, trades = _passing_history()
    assert (
        evaluate(
            rules=rules(profit_target_percent=D(10), min_trading_days=5), readings=readings, trades=trades
        )
        .summary()
        .status
        == "active"
    )
    assert (
        evaluate(
            rules=rules(profit_target_percent=D(10), best_day_percent=D(25)), readings=readings, trades=trades
        )
        .summary()
        .status
        == "active"
    )
    assert (
        evaluate(rules=rules(profit_target_percent=D(11)), readings=readings, trades=trades).summary().status
        == "active"
    )
    no_target = evaluate(rules=rules(), readings=readings, trades=trades).summary()
    assert (no_target.status, no_target.profit_target_met) == ("active", None)


def test_best_day_share_is_null_without_a_positive_total_and_open_trades_count_nowhere() -> None:
    trades = [
        Trade(at("2026-03-02T08:00:00Z"), at("2026-03-02T08:30:00Z"), D(-200)),
        Trade(at("2026-03-02T08:40:00Z"), None, D(5000)),
    ]
    state = evaluate(
        rules=rules(best_day_percent=D(50)), readings=[r("2026-03-02T09:00:00Z", 99800)], trades=trades
    )
    assert state.best_day_share() is None
    assert state.trading_days() == 1
    assert state.days[0].closed_profit == -200


def test_trades_outside_the_evaluation_do_not_count() -> None:
    trades = [
        Trade(at("2026-03-02T06:00:00Z"), at("2026-03-02T06:30:00Z"), D(100)),  # before start
        Trade(at("2026-03-02T09:00:00Z"), at("2026-03-02T10:00:00Z"), D(100)),  # after the last reading
    ]
    state = evaluate(
        rules=rules(),
        readings=[r("2026-03-02T07:00:00Z", 100000), r("2026-03-02T09:30:00Z", 100000)],
        trades=trades,
    )
    assert state.trading_days() == 1
    assert state.days[0].closed_profit == 0


# ---------------------------------------------------------------- incremental use


def test_reading_by_reading_gives_the_same_state_as_a_replay() -> None:
    readings, trades = _passing_history()
    rule_set = rules(profit_target_percent=D(10), min_trading_days=4)
    live = RulesState.begin(rule_set)
    for reading, trade in zip(readings[1:], trades, strict=True):
        live.observe(reading)
        live.trade_opened(trade.open_time)
        live.trade_closed(trade.close_time, trade.profit)  # type: ignore[arg-type]
    live_first = RulesState.begin(rule_set)
    live_first.observe(readings[0])
    replay = evaluate(rules=rule_set, readings=readings[1:], trades=trades)
    assert live.to_result() == replay.to_result()


def test_a_balance_operation_moves_the_base_and_references_not_the_pl() -> None:
    state = RulesState.begin(rules(max_loss=MaxLoss(percent=D(10), mode="static")))
    state.observe(r("2026-03-02T07:00:00Z", 100000))
    state.balance_operation(D(-20000))  # a withdrawal
    assert state.observe(r("2026-03-02T07:01:00Z", 80000)) is None
    assert state.daily_limit() == 75000
    assert state.max_loss_limit() == 70000


def test_an_invalid_rule_set_is_refused_with_field_messages() -> None:
    bad = rules(
        initial_balance=D(0),
        timezone="Mars/Olympus",
        daily_loss=DailyLoss(percent=D(-1), of="peak", base="credit"),
        max_loss=MaxLoss(percent=D(0), mode="weekly"),
        warn_at_percent_used=D(0),
    )
    with pytest.raises(InvalidRuleSet) as caught:
        evaluate(rules=bad, readings=[r("2026-03-02T07:00:00Z", 1)], trades=[])
    assert set(caught.value.errors) == {
        "initial_balance",
        "timezone",
        "daily_loss.percent",
        "daily_loss.of",
        "daily_loss.base",
        "max_loss.percent",
        "max_loss.mode",
        "warn_at_percent_used",
    }
