"""Scenarios of the account-sync pipeline's readings: balance operations (deposit, withdrawal, credit, bonus, charge),
an unreadable deal history, a terminal off its trade server. Each through `manage.py run_scenario`, on PostgreSQL."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from pipeline.replay.parser import ScenarioError, scenario_parse
from pipeline.tests.test_scenarios import SCENARIOS, TICKET, guard_events, run, transactional


def _events(result: dict, kind: str) -> list[dict]:
    return [e for e in result["events"] if e["type"] == kind]


@transactional
def test_a_withdrawal_of_half_the_balance_does_not_liquidate():
    result = run("balance_withdrawal_no_liquidation")
    adjusted = _events(result, "balance_adjusted")
    assert [(e["t"], e["amount"], e["peak"]) for e in adjusted] == [(30, -5000, 4999)]
    assert isinstance(adjusted[0]["deal"], int)
    assert guard_events(result) == []  # no level, no liquidation
    assert result["final"]["guard_state"] == "normal"
    assert result["final"]["open_positions"] == [TICKET]
    assert result["final"]["balance"] == 5000


@transactional
def test_a_deposit_does_not_hide_a_loss():
    result = run("balance_deposit_keeps_loss")
    assert [(e["t"], e["amount"], e["peak"]) for e in _events(result, "balance_adjusted")] == [
        (60, 5000, 15000)
    ]
    assert guard_events(result)[:3] == [
        (60, "guard_level", "drawdown", "critical"),  # 40 % at 50, still 26.7 % at 60 with the deposit
        (60, "liquidation_scheduled", 70),
        (70, "liquidation_started"),
    ]
    assert result["final"]["guard_state"] == "halted"
    assert result["final"]["open_positions"] == []


@transactional
def test_credit_and_bonus_move_the_peak_and_a_charge_is_a_loss():
    result = run("balance_credit_and_bonus")
    assert [(e["t"], e["amount"], e["peak"]) for e in _events(result, "balance_adjusted")] == [
        (20, 2000, 12000),  # credit given (moves credit, so equity)
        (30, 500, 12500),  # bonus
        (50, -2000, 10500),  # credit taken back: not a drawdown
    ]
    assert len({e["deal"] for e in _events(result, "balance_adjusted")}) == 3
    assert guard_events(result) == []
    # The charge of 300 is P/L: equity 10 200 against the peak of 10 500.
    assert result["final"]["equity"] == 10200


@transactional
def test_a_withdrawal_read_without_its_history_is_not_judged():
    result = run("balance_history_unreadable")
    waiting = _events(result, "snapshot_stale")
    assert [e["t"] for e in waiting] == [20]
    assert "deal history could not be read" in waiting[0]["reason"]
    assert [(e["t"], e["amount"], e["peak"]) for e in _events(result, "balance_adjusted")] == [
        (30, -5000, 5000)
    ]
    assert guard_events(result) == []
    assert result["final"]["guard_state"] == "normal"


@transactional
def test_a_disconnect_mid_position_marks_nothing_missing_and_the_guards_wait():
    result = run("disconnect_mid_position")
    syncs = {e["t"]: e for e in _events(result, "sync")}
    assert [syncs[t]["ok"] for t in (20, 30, 40, 50, 60, 70)] == [True, False, False, False, False, True]
    assert syncs[30]["error"] == "the terminal is not connected to its trade server"
    assert syncs[70]["positions"] == 1  # the position was there all along
    waiting = _events(result, "snapshot_stale")
    assert [(e["t"], e["reason"]) for e in waiting] == [
        (30, "no reading: the terminal is not connected to its trade server")
    ]
    # Nothing missing while disconnected: the only divergence is the guards' own close at 90.
    assert [(e["t"], e["kind"]) for e in _events(result, "divergence")] == [(90, "missing_position")]
    # The price fell during the disconnect; critical is confirmed by the two connected readings after it.
    assert guard_events(result)[:2] == [
        (80, "guard_level", "drawdown", "critical"),
        (80, "liquidation_scheduled", 90),
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"balance": {"type": "gift", "amount": 5}}, "steps[0].balance.type: must be one of"),
        ({"balance": {"type": "balance"}}, "steps[0].balance.amount: is required"),
        ({"balance": {"type": "balance", "amount": 0}}, "steps[0].balance.amount: must not be 0"),
        ({"balance": {"type": "credit", "amount": "lots"}}, "steps[0].balance.amount: must be a number"),
        ({"balance": {"type": "bonus", "amount": 5, "comment": 7}}, "steps[0].balance.comment"),
        ({"balance": {"type": "bonus", "amount": 5, "when": 1}}, "unknown key(s) when"),
        ({"balance": [1]}, "steps[0].balance: must be an object"),
        ({"disconnect": {}}, "steps[0].disconnect.seconds: is required"),
        ({"disconnect": {"seconds": 0}}, "steps[0].disconnect.seconds: must be greater than 0"),
        ({"disconnect": {"seconds": True}}, "steps[0].disconnect.seconds: must be a number"),
        ({"disconnect": {"seconds": 5, "x": 1}}, "unknown key(s) x"),
    ],
)
def test_malformed_balance_and_disconnect_steps_name_the_path(step, message):
    document = {"account": {"login": 1}, "until": 5, "steps": [{"at": 1, **step}]}
    with pytest.raises(ScenarioError) as error:
        scenario_parse(json.dumps(document))
    assert message in str(error.value)


@transactional
def test_a_malformed_balance_step_exits_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"account": {"login": 9}, "until": 5, "steps": [{"at": 1, "balance": {}}]}))
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("run_scenario", str(path), "--in-place", stdout=io.StringIO(), stderr=stderr)
    assert exit_info.value.code == 2
    assert "steps[0].balance.type" in stderr.getvalue()


def test_every_shipped_scenario_is_run_by_a_test():
    """Each file in guards/scenarios is named by some scenario test (so all of them run)."""
    tests = "".join(path.read_text() for path in Path(__file__).parent.glob("test_scenarios*.py"))
    unrun = sorted(p.stem for p in SCENARIOS.glob("*.json") if f'"{p.stem}"' not in tests)
    assert unrun == []
