"""The shipped rule-set scenarios (issue #16 step 7) through `manage.py run_scenario`: the `rules` key puts the
scenario's account under a rule set; `rule_level`, `rule_breach` and `objectives_met` are events; `size` asks the
live sizing."""

import pytest

from pipeline.replay.parser import ScenarioError, scenario_parse
from pipeline.tests.test_scenarios import run, transactional

TICKET = 100000001


def story(result: dict, kinds: tuple[str, ...]) -> list[dict]:
    return [event for event in result["events"] if event["type"] in kinds]


@transactional
def test_a_floating_loss_through_the_daily_limit_liquidates_at_once():
    result = run("rules_daily_floating_liquidates")
    events = story(result, ("rule_level", "rule_breach", "liquidation_scheduled", "close_confirmed"))
    assert [(e["t"], e["type"]) for e in events] == [
        (30, "rule_level"),
        (50, "rule_breach"),
        (50, "liquidation_scheduled"),
        (50, "close_confirmed"),
    ]
    assert (events[1]["rule"], events[1]["limit"], events[1]["equity"]) == ("daily_loss", 9500, 9440)
    assert (events[2]["guard"], events[2]["at"]) == ("rules", 50)  # no grace period: a breach cannot recover
    final = result["final"]
    assert (final["guard_state"], final["open_positions"]) == ("halted", [])
    assert final["rules"]["status"] == "breached"


@transactional
def test_an_end_of_day_trailing_limit_locks_at_the_initial_balance():
    final = run("rules_eod_trailing_locks_at_initial")["final"]["rules"]
    # the balance at the second day's reset is 10 840: trailing 6 % would put the limit at 10 240; it locks at 10 000
    assert (final["max_loss_limit"], final["daily_limit"]) == (10000, 10540)
    assert (final["status"], final["trading_days"]) == ("active", 2)


@transactional
def test_warning_makes_the_account_close_only_and_sizing_is_refused():
    result = run("rules_warning_close_only_refuses_sizing")
    events = story(result, ("rule_level", "sizing"))
    assert [(e["t"], e["type"]) for e in events] == [(30, "rule_level"), (45, "sizing")]
    assert (events[0]["level"], events[0]["close_only"]) == ("warning", True)
    assert (events[1]["approved"], events[1]["reason"]) == (False, "close_only")
    assert result["final"]["open_positions"] == [TICKET]  # nothing closed


@transactional
def test_objectives_met_is_an_alert_and_nothing_is_closed():
    result = run("rules_objectives_met")
    events = story(result, ("objectives_met", "liquidation_scheduled"))
    assert [(e["t"], e["type"], e["trading_days"]) for e in events] == [(40, "objectives_met", 1)]
    assert result["final"]["rules"]["objectives_met"] is True
    assert result["final"]["open_positions"] == [TICKET + 1]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"initial_balance": 0}, "rules.initial_balance"),
        ({"initial_balance": 1000, "timezone": "Mars/Base"}, "rules.timezone"),
        ({"initial_balance": 1000, "max_loss": {"percent": 5, "mode": "weekly"}}, "rules.max_loss.mode"),
        ({"initial_balance": 1000, "close_only_on_warning": "yes"}, "rules.close_only_on_warning"),
    ],
)
def test_a_bad_rules_key_is_a_clear_error(rules, message):
    import json

    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        scenario_parse(json.dumps({"account": {"login": 1}, "until": 10, "rules": rules}))
