"""The `rules_case` command and its case-file format (no database)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from core.casefiles import CaseFileError
from core.shared_cases import shared_case_path
from rules.case_file import parse_case

EXAMPLE = shared_case_path("rules-example.json")


def example() -> dict[str, Any]:
    return copy.deepcopy(json.loads(EXAMPLE.read_text()))


def run(tmp_path: Path, case: object) -> tuple[int, str, str]:
    path = tmp_path / "case.json"
    path.write_text(case if isinstance(case, str) else json.dumps(case))
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rules_case", str(path), stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_the_shared_example_reproduces_every_field(tmp_path: Path) -> None:
    data = example()
    status, out, err = run(tmp_path, data)
    assert (status, err) == (0, "")
    assert json.loads(out) == data["expected"]
    # The case alone (without the {"case", "expected"} wrapper) gives the same.
    assert json.loads(run(tmp_path, data["case"])[1]) == data["expected"]


def test_the_specs_short_example_reproduces(tmp_path: Path) -> None:
    case = example()["case"]
    case["readings"] = case["readings"][:3]
    case["trades"] = case["trades"][:1]
    assert json.loads(run(tmp_path, case)[1]) == {
        "status": "active",
        "breach": None,
        "days": [
            {"day": "2026-03-02", "start": "2026-03-01T23:00:00Z", "base": 100000, "daily_limit": 95000,
             "lowest_equity": 99310.5, "closed_profit": 1250.0, "traded": True}
        ],
        "trading_days": 1,
        "best_day_share": 100.0,
        "profit_target_met": False,
        "level": "normal",
        "headroom": {"daily_limit": 95000, "permitted_loss_today": 6250.0, "max_loss_limit": 90000,
                     "permitted_loss_total": 11250.0, "daily_used_percent": 0, "total_used_percent": 0,
                     "next_reset": "2026-03-02T23:00:00Z"},
    }  # fmt: skip


def test_numbers_may_be_decimal_strings_and_times_offsets() -> None:
    case = example()["case"]
    case["rules"]["initial_balance"] = "100000"
    case["readings"][0] = {"time": "2026-03-02T08:00:00+01:00", "balance": "100000.00", "equity": "100000"}
    parsed = parse_case(case)
    assert parsed.readings[0].time.isoformat() == "2026-03-02T07:00:00+00:00"
    assert parsed.evaluate().to_result() == example()["expected"]


def _set(data: dict[str, Any], path: str, value: object) -> None:
    keys = path.split(".")
    target: Any = data
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("rules.timezone", "Europe/Atlantis", "rules.timezone: unknown time zone"),
        ("rules.reset_time", "24:00", "rules.reset_time: must be a time HH:MM"),
        ("rules.reset_time", "9:30", "rules.reset_time"),
        ("rules.start", "2026-03-02T07:00:00", "rules.start: must have a zone"),
        ("rules.start", "yesterday", "rules.start: must be an ISO 8601 time"),
        (
            "readings.1.time",
            "2026-03-02T06:00:00Z",
            "readings[1].time: readings must be in ascending time order",
        ),
        ("readings.0.time", "2026-03-02T06:00:00Z", "readings[0].time: must not be before rules.start"),
        ("readings", [], "readings: must not be empty"),
        ("readings.0.equity", "lots", "readings[0].equity: must be a number"),
        ("rules.daily_loss.percent", 0, "rules.daily_loss.percent: must be a positive number"),
        ("rules.max_loss.percent", -10, "rules.max_loss.percent: must be a positive number"),
        ("rules.profit_target.percent", 0, "rules.profit_target.percent"),
        ("rules.best_day_percent", -1, "rules.best_day_percent"),
        ("rules.initial_balance", 0, "rules.initial_balance: must be a positive number"),
        ("rules.initial_balance", _DELETE, "rules.initial_balance: is required"),
        ("rules.max_loss.mode", "weekly", "rules.max_loss.mode: must be one of"),
        ("rules.daily_loss.of", "peak", "rules.daily_loss.of: must be one of"),
        ("rules.daily_loss.base", "credit", "rules.daily_loss.base: must be one of"),
        ("rules.max_loss.lock_at_initial", "yes", "rules.max_loss.lock_at_initial"),
        ("rules.min_trading_days", 1.5, "rules.min_trading_days"),
        ("rules.warn_at_percent_used", 0, "rules.warn_at_percent_used"),
        ("rules.daily_los", {"percent": 5}, "rules.daily_los: unknown key"),
        ("trades.0.close_time", "2026-03-02T07:59:00Z", "trades[0].close_time: must not be before open_time"),
        ("trades.0.profit", True, "trades[0].profit: must be a number"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_nothing_on_stdout(
    tmp_path: Path, path: str, value: object, message: str
) -> None:
    case = example()["case"]
    _set(case, path, value)
    status, out, err = run(tmp_path, case)
    assert status == 2
    assert out == ""
    assert message in err


@pytest.mark.parametrize("text", ["{", "[]", '{"rules": {}, "readings": [], "rules": {}}', "NaN"])
def test_malformed_json_exits_2(tmp_path: Path, text: str) -> None:
    status, out, err = run(tmp_path, text)
    assert (status, out) == (2, "")
    assert err.startswith("rules_case: ")


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command("rules_case", str(tmp_path / "nope.json"), stdout=out, stderr=err)
    assert caught.value.code == 2
    assert out.getvalue() == ""


def test_parse_errors_are_case_file_errors() -> None:
    with pytest.raises(CaseFileError, match="readings: is required"):
        parse_case({"rules": example()["case"]["rules"]})
