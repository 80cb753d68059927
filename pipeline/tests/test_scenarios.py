"""Every shipped scenario file through `manage.py run_scenario`: the real pipeline (sync, reconciliation, guards,
liquidation, auto-close, audit) against the simulated terminal on a virtual clock.

Most run with --in-place on the test database (transactional tests: the concurrent-close threads need committed
rows); the spec example also runs the default way, on a throw-away database, and once as a real subprocess."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from pipeline.replay.parser import ScenarioError, scenario_parse

SCENARIOS = Path(__file__).resolve().parents[2] / "guards" / "scenarios"
TICKET = 100000001  # the simulator's first position ticket

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def run(name: str, *, in_place: bool = True) -> dict:
    out = io.StringIO()
    args = [str(SCENARIOS / f"{name}.json"), "--indent", "0"]
    if in_place:
        args.append("--in-place")
    call_command("run_scenario", *args, stdout=out)
    return json.loads(out.getvalue())


def guard_events(result: dict) -> list[tuple]:
    """The guard story without the syncs: (t, type, key fields)."""
    story: list[tuple] = []
    for event in result["events"]:
        kind = event["type"]
        if kind == "guard_level":
            story.append((event["t"], kind, event["guard"], event["level"]))
        elif kind == "liquidation_scheduled":
            story.append((event["t"], kind, event["at"]))
        elif kind == "close_sent":
            story.append((event["t"], kind, event["retcode"]))
        elif kind in ("close_confirmed", "close_failed", "close_unresolved", "halted_position"):
            story.append((event["t"], kind, event["ticket"]))
        elif kind in ("liquidation_cancelled", "liquidation_started", "reset"):
            story.append((event["t"], kind))
    return story


LIQUIDATION_PREFIX = [
    (70, "guard_level", "drawdown", "warning"),
    (130, "guard_level", "drawdown", "critical"),
    (130, "liquidation_scheduled", 140),
    (140, "liquidation_started"),
]


def test_every_shipped_scenario_parses():
    names = sorted(p.stem for p in SCENARIOS.glob("*.json"))
    assert len(names) >= 13
    for path in SCENARIOS.glob("*.json"):
        scenario_parse(path.read_text())


@transactional
def test_warning_then_recovery():
    result = run("warning_then_recovery")
    assert guard_events(result) == [
        (70, "guard_level", "drawdown", "warning"),
        (100, "guard_level", "drawdown", "normal"),
    ]
    assert result["final"]["guard_state"] == "normal"
    assert result["final"]["open_positions"] == [TICKET]
    assert result["final"]["order_sends"] == {}


@transactional
def test_critical_confirmed_then_liquidation_after_the_grace_period():
    result = run("critical_liquidation")
    assert guard_events(result) == [
        *LIQUIDATION_PREFIX,
        (140, "close_sent", 10009),
        (140, "close_confirmed", TICKET),
    ]
    final = result["final"]
    assert final["open_positions"] == []
    assert final["guard_state"] == "halted"
    assert final["order_sends"] == {str(TICKET): 1}
    assert final["equity"] == final["balance"] == 7780
    assert final["liquidation_delays"] == [
        {"critical_confirmed_at": 130, "first_close_at": 140, "seconds": 10}
    ]


@transactional
def test_critical_then_recovery_inside_the_grace_period_is_cancelled():
    result = run("critical_recovery_in_grace")
    assert guard_events(result) == [
        (70, "guard_level", "drawdown", "warning"),
        (130, "guard_level", "drawdown", "critical"),
        (130, "liquidation_scheduled", 140),
        (140, "guard_level", "drawdown", "normal"),
        (140, "liquidation_cancelled"),
    ]
    assert result["final"]["guard_state"] == "normal"
    assert result["final"]["open_positions"] == [TICKET]
    assert result["final"]["order_sends"] == {}


@transactional
def test_a_single_bad_tick_does_nothing():
    result = run("single_bad_tick")
    assert guard_events(result) == []
    assert [e["equity"] for e in result["events"] if e["type"] == "sync" and e["t"] in (110, 120, 130)] == [
        9980,
        7780,
        9780,
    ]
    assert result["final"]["guard_state"] == "normal"
    assert result["final"]["open_positions"] == [TICKET]


@transactional
def test_timeout_after_execution_is_resolved_without_a_second_order():
    result = run("timeout_after_execution")
    assert guard_events(result) == [
        *LIQUIDATION_PREFIX,
        (140, "close_sent", None),
        (140, "close_unresolved", TICKET),
        (140, "close_confirmed", TICKET),
    ]
    assert result["final"]["order_sends"] == {str(TICKET): 1}
    assert result["final"]["open_positions"] == []


@transactional
def test_ipc_timeout_without_execution_is_re_read_then_sent_again():
    result = run("critical_liquidation_ipc_timeout")
    assert guard_events(result)[len(LIQUIDATION_PREFIX) :] == [
        (140, "close_sent", None),
        (140, "close_unresolved", TICKET),
        (140, "close_sent", 10009),
        (140, "close_confirmed", TICKET),
    ]
    assert result["final"]["order_sends"] == {str(TICKET): 2}
    assert result["final"]["open_positions"] == []


@transactional
def test_requotes_are_retried_a_bounded_number_of_times():
    result = run("requotes_bounded")
    assert guard_events(result)[len(LIQUIDATION_PREFIX) :] == [
        *[(140, "close_sent", 10004)] * 4,
        (140, "close_failed", TICKET),  # attempt 1: bounded, reported
        *[(145, "close_sent", 10004)] * 4,
        (145, "close_failed", TICKET),  # attempt 2, 5 s later
        (155, "close_sent", 10004),  # attempt 3, 10 s later
        (155, "close_sent", 10004),
        (155, "close_sent", 10009),
        (155, "close_confirmed", TICKET),
    ]
    failed = [e for e in result["events"] if e["type"] == "close_failed"]
    assert [(e["attempt"], e["retcode"], e["retry_at"]) for e in failed] == [(1, 10004, 145), (2, 10004, 155)]
    assert result["final"]["order_sends"] == {str(TICKET): 11}
    assert result["final"]["open_positions"] == []
    assert result["final"]["guard_state"] == "halted"


@transactional
def test_requotes_then_a_fill():
    result = run("requotes_then_filled")
    assert [e[2] for e in guard_events(result) if e[1] == "close_sent"] == [10004, 10004, 10009]
    assert result["final"]["open_positions"] == []


@transactional
def test_invalid_fill_tries_the_next_filling_mode():
    result = run("invalid_fill")
    sent = [(e["retcode"], e["filling"]) for e in result["events"] if e["type"] == "close_sent"]
    assert sent == [(10030, 0), (10009, 1)]  # FOK refused, IOC filled
    assert result["final"]["open_positions"] == []


@transactional
def test_stop_loss_while_the_close_is_in_flight_is_confirmed_without_error():
    result = run("sl_during_close")
    assert guard_events(result)[len(LIQUIDATION_PREFIX) :] == [
        (140, "close_sent", 10036),
        (140, "close_confirmed", TICKET),
    ]
    confirmed = next(e for e in result["events"] if e["type"] == "close_confirmed")
    assert confirmed["closed_by"] == "stop_loss"
    assert not [e for e in result["events"] if e["type"] == "close_failed"]
    assert result["final"]["open_positions"] == []


@transactional
def test_ten_concurrent_close_requests_make_exactly_one_order_send():
    result = run("concurrent_close")
    assert result["final"]["order_sends"] == {str(TICKET): 1}
    assert result["final"]["open_positions"] == []
    assert [e["type"] for e in result["events"] if e["type"].startswith("close_")] == [
        "close_sent",
        "close_confirmed",
    ]


@transactional
def test_a_position_opened_while_halted_is_reported_and_closed():
    result = run("halted_new_position")
    manual = result["final"]["tickets"]["manual-1"]
    assert (200, "halted_position", manual) in guard_events(result)
    assert guard_events(result)[-2:] == [(200, "close_sent", 10009), (200, "close_confirmed", manual)]
    assert result["final"]["open_positions"] == []
    assert result["final"]["order_sends"] == {str(TICKET): 1, str(manual): 1}
    assert result["final"]["guard_state"] == "halted"


@transactional
def test_reset_by_support_returns_to_normal():
    result = run("reset_by_support")
    reset = next(e for e in result["events"] if e["type"] == "reset")
    assert reset["by"] == "scenario-support"
    assert reset["t"] == 200
    after = result["final"]["tickets"]["after-reset"]
    assert result["final"]["guard_state"] == "normal"
    assert result["final"]["open_positions"] == [after]
    assert [e for e in guard_events(result) if e[0] > 200] == []


@transactional
def test_the_spec_example_on_a_throw_away_database():
    before = settings.DATABASES["default"]["NAME"]
    result = run("spec_example", in_place=False)
    assert settings.DATABASES["default"]["NAME"] == before
    # With the spec's defaults the daily-loss guard (5 %) is on; the 18 % loss at t=60 trips it first.
    assert guard_events(result) == [
        (70, "guard_level", "drawdown", "warning"),
        (70, "guard_level", "daily_loss", "critical"),
        (70, "liquidation_scheduled", 80),
        (80, "liquidation_started"),
        (80, "close_sent", 10009),
        (80, "close_confirmed", TICKET),
    ]
    assert {
        "t": 80,
        "type": "divergence",
        "kind": "missing_position",
        "bot_trade": "bt-1",
        "ticket": TICKET,
    } in (result["events"])
    sync = result["events"][0]
    assert sync == {"t": 0, "type": "sync", "equity": 9980, "positions": 1, "ok": True}
    assert result["final"]["open_positions"] == []
    assert result["final"]["guard_state"] == "halted"
    assert result["final"]["order_sends"] == {str(TICKET): 1}
    assert [e["t"] for e in result["events"]] == sorted(e["t"] for e in result["events"])


def _manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DJANGO_LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "run_scenario", *args],
        cwd=settings.BASE_DIR,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_malformed_files_exit_2_with_a_message_on_stderr(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"account": {"login": 1}, "until": 10, "steps": [{"at": 1, "prices": {"EURUSD": {}}}]})
    )
    process = _manage(str(bad))
    assert process.returncode == 2
    assert process.stdout == ""
    assert "steps[0].prices.EURUSD.bid: is required" in process.stderr
    assert _manage("-", stdin="{not json").returncode == 2
    assert _manage(str(tmp_path / "missing.json")).returncode == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"until": 10}, "account: must be an object"),
        ({"account": {"login": 0}, "until": 10}, "account.login: must be at least 1"),
        ({"account": {"login": 1}}, "until: is required"),
        ({"account": {"login": 1, "margin_mode": "x"}, "until": 1}, "account.margin_mode"),
        (
            {"account": {"login": 1}, "until": 5, "steps": [{"at": 6, "prices": {"A": {"bid": 1}}}]},
            "steps[0].at",
        ),
        ({"account": {"login": 1}, "until": 5, "steps": [{"at": 1}]}, "needs 'at' and exactly one action"),
        ({"account": {"login": 1}, "until": 5, "steps": [{"at": 1, "teleport": {}}]}, "steps[0].teleport"),
        (
            {
                "account": {"login": 1},
                "until": 5,
                "steps": [{"at": 1, "open": {"symbol": "X", "side": "up"}}],
            },
            "side",
        ),
        (
            {"account": {"login": 1}, "until": 5, "steps": [{"at": 1, "fault": {"call": "order_send"}}]},
            "exactly one of 'last_error' or 'retcode'",
        ),
        ({"account": {"login": 1}, "until": 5, "config": {"guards": {"nope": 1}}}, "unknown guard setting"),
        (
            {"account": {"login": 1}, "until": 5, "config": {"guards": {"drawdown_warning_percent": 30}}},
            "config.guards.drawdown_warning_percent",
        ),
        ({"account": {"login": 1}, "until": 5, "steps": [{"at": 1, "close": {}}]}, "exactly one of 'ticket'"),
    ],
)
def test_parser_names_the_offending_path(document, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario_parse(json.dumps(document))


@transactional
def test_unknown_symbol_in_a_step_is_a_scenario_error(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {"account": {"login": 9}, "until": 0, "steps": [{"at": 0, "prices": {"NOPE": {"bid": 1}}}]}
        )
    )
    with pytest.raises(SystemExit) as exit_info:
        call_command("run_scenario", str(path), "--in-place", stdout=io.StringIO(), stderr=io.StringIO())
    assert exit_info.value.code == 2


def test_in_place_is_refused_outside_a_test_database(monkeypatch):
    from django.db import connections

    from pipeline.management.commands.run_scenario import _in_place_allowed

    monkeypatch.setitem(connections["default"].settings_dict, "NAME", "test_mt5guard")
    assert _in_place_allowed() is True
    monkeypatch.setitem(connections["default"].settings_dict, "NAME", "mt5guard")
    assert _in_place_allowed() is False


@transactional
def test_market_guard_set_to_act_closes_on_a_spread_over_the_cap():
    result = run("market_spread_cap_close")
    market = [e for e in result["events"] if e["type"] == "guard_level"]
    assert market == [
        {"t": 50, "type": "guard_level", "guard": "market", "level": "critical", "value": 166.6667,
         "symbol": "EURUSD", "reason": "spread_cap"}
    ]  # fmt: skip
    assert guard_events(result)[-2:] == [(50, "close_sent", 10009), (50, "close_confirmed", TICKET)]
    assert result["final"]["open_positions"] == []
    assert result["final"]["guard_state"] == "normal"


@transactional
def test_market_gap_alerts_and_marks_but_does_not_close_by_default():
    result = run("market_gap_alert")
    assert [(e["t"], e["level"], e["reason"]) for e in result["events"] if e["type"] == "guard_level"] == [
        (120, "critical", "gap"),
        (180, "normal", ""),
    ]
    marked = next(e for e in result["events"] if e["type"] == "market_marked")
    assert marked["closing"] is False
    assert result["final"]["open_positions"] == [TICKET]
    assert result["final"]["order_sends"] == {}


@transactional
def test_failed_syncs_are_not_readings():
    result = run("terminal_down_no_reading")
    syncs = {e["t"]: e for e in result["events"] if e["type"] == "sync"}
    assert (syncs[120]["ok"], syncs[130]["ok"], syncs[140]["ok"]) == (False, False, True)
    assert syncs[120]["equity"] is None
    assert guard_events(result)[:3] == [
        (150, "guard_level", "drawdown", "critical"),
        (150, "liquidation_scheduled", 160),
        (160, "liquidation_started"),
    ]
    assert result["final"]["liquidation_delays"] == [
        {"critical_confirmed_at": 150, "first_close_at": 160, "seconds": 10}
    ]


def _closes(result: dict) -> list[tuple]:
    return [
        (e["t"], e["type"], e["attempt"], e.get("retcode"))
        for e in result["events"]
        if e["type"] in ("close_sent", "close_failed", "close_confirmed")
    ]


@transactional
def test_market_closed_at_liquidation_is_retried_until_it_opens():
    result = run("market_closed_at_liquidation")
    attempts = [(t, n) for t, kind, n, _ in _closes(result) if kind == "close_failed"]
    assert attempts == [(140, 1), (145, 2), (155, 3), (175, 4), (215, 5)]  # 5, 10, 20, 40 s, then every 60 s
    assert {r for _, kind, _, r in _closes(result) if kind == "close_failed"} == {10018}
    assert _closes(result)[-2:] == [(275, "close_sent", 6, 10009), (275, "close_confirmed", 6, None)]
    assert result["final"]["order_sends"] == {str(TICKET): 6}  # one order per attempt
    assert result["final"]["open_positions"] == []
    assert result["final"]["guard_state"] == "halted"


@transactional
def test_algo_trading_switched_off_in_the_grace_period_does_not_escape():
    result = run("algo_trading_off_in_grace")
    assert _closes(result) == [
        (140, "close_sent", 1, 10027),
        (140, "close_failed", 1, 10027),
        (145, "close_sent", 2, 10027),
        (145, "close_failed", 2, 10027),
        (155, "close_sent", 3, 10027),
        (155, "close_failed", 3, 10027),
        (175, "close_sent", 4, 10009),
        (175, "close_confirmed", 4, None),
    ]
    assert result["final"]["open_positions"] == []
    assert result["final"]["order_sends"] == {str(TICKET): 4}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"market": {"symbol": "EURUSD"}}, "steps[0].market.open: is required"),
        ({"market": {"symbol": "EURUSD", "open": "no"}}, "steps[0].market.open: is required"),
        ({"market": {"open": False}}, "steps[0].market.symbol: must be a non-empty string"),
        ({"market": {"symbol": "EURUSD", "open": False, "why": 1}}, "steps[0].market: unknown key(s) why"),
        ({"market": []}, "steps[0].market: must be an object"),
        (
            {"fault": {"call": "order_send", "retcode": "10018"}},
            "steps[0].fault.retcode: must be a whole number",
        ),
        (
            {"fault": {"call": "positions_get", "retcode": 10018}},
            "steps[0].fault.retcode: applies to order_send",
        ),
        ({"reset": {"reason": "x", "confirm_open_positions": 1}}, "steps[0].reset.confirm_open_positions"),
    ],
)
def test_malformed_market_and_fault_steps_are_clear_errors(step, message):
    with pytest.raises(ScenarioError) as error:
        scenario_parse(json.dumps({"account": {"login": 1}, "until": 10, "steps": [{"at": 0, **step}]}))
    assert str(error.value).startswith(message)


def test_a_malformed_market_step_exits_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"account": {"login": 1}, "until": 10, "steps": [{"at": 0, "market": {}}]}))
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "run_scenario", str(path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "steps[0].market.symbol" in completed.stderr


@transactional
def test_a_disconnect_as_the_close_goes_out_proves_nothing():
    result = run("disconnect_during_liquidation")
    assert _closes(result) == [
        (140, "close_sent", 1, 10031),
        (170, "close_sent", 1, 10009),  # same attempt, after the reconnect: found open, closed
        (170, "close_confirmed", 1, None),
    ]
    unresolved = [e for e in result["events"] if e["type"] == "close_unresolved"]
    assert [(e["t"], e["retcode"]) for e in unresolved] == [(140, 10031)]
    confirmed = next(e for e in result["events"] if e["type"] == "close_confirmed")
    assert confirmed["evidence"] == "done"
    assert result["final"]["order_sends"] == {str(TICKET): 2}
    assert result["final"]["open_positions"] == []


@transactional
def test_a_disconnected_re_check_does_not_halt_on_an_empty_reading():
    result = run("disconnect_at_liquidation")
    started = [e for e in result["events"] if e["type"] == "liquidation_started"]
    assert [e["t"] for e in started] == [155]  # re-check retried until the terminal is back
    assert not [e for e in result["events"] if e["type"] == "halted_position"]
    assert _closes(result) == [(155, "close_sent", 1, 10009), (155, "close_confirmed", 1, None)]
    assert result["final"]["open_positions"] == []
    assert result["final"]["guard_state"] == "halted"
