"""The size case file parser and the `size_case` command. No database: the command must not need one."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.shared_cases import shared_case_path
from risk.case_file import CaseFileError, parse_case
from risk.sizing import SizingConfig

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = shared_case_path("size-example.json")

# The case file of shared/spec/sizing.md, verbatim.
SPEC_CASE_TEXT = """{
  "account": {"currency": "USD", "balance": 10000, "equity": 10000, "margin_free": 9500,
              "snapshot_age_seconds": 12},
  "config": {"risk_percent": 3.0, "entry_splits": [50, 35, 15], "margin_buffer_percent": 20,
             "max_snapshot_age_seconds": 300},
  "symbol": {"name": "EURUSD", "digits": 5, "point": 0.00001, "trade_tick_size": 0.00001,
             "trade_tick_value": 1.0, "volume_min": 0.01, "volume_max": 100, "volume_step": 0.01,
             "margin_per_lot": 1085.0},
  "setup": {"side": "buy", "entries": [1.0850, 1.0840, 1.0830], "sl": 1.0800}
}"""


DELETE = object()


def spec_case() -> dict[str, Any]:
    case: dict[str, Any] = json.loads(SPEC_CASE_TEXT)
    return case


def with_value(path: str, value: Any, *, case: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec case with `section.key` set to value (or removed when value is DELETE)."""
    case = copy.deepcopy(case or spec_case())
    section, key = path.split(".")
    if value is DELETE:
        del case[section][key]
    else:
        case[section][key] = value
    return case


# ---------------------------------------------------------------- parsing


def test_spec_case_text_parses_to_exact_decimals() -> None:
    case = parse_case(SPEC_CASE_TEXT)
    assert case.setup.entries == (D("1.0850"), D("1.0840"), D("1.0830"))
    assert str(case.setup.entries[0]) == "1.0850"  # the decimal text survives, not a float's
    assert case.symbol.point == D("0.00001")
    assert case.config == SizingConfig()
    assert case.size().to_dict()["total_margin"] == "770.35"


def test_shared_example_file_with_its_case_wrapper_parses() -> None:
    text = EXAMPLE.read_text()
    assert parse_case(text).size().to_dict() == json.loads(text)["expected"] | {"capped_by": None}


def test_numbers_may_be_decimal_strings_or_dict_floats() -> None:
    case = with_value("setup.entries", ["1.0850", "1.0840", "1.083E0"])
    case["symbol"]["volume_step"] = 0.01  # a Python float in dict input: read through its repr
    parsed = parse_case(case)
    assert parsed.setup.entries[2] == D("1.083")
    assert parsed.symbol.volume_step == D("0.01")


def test_config_is_optional_and_partial() -> None:
    case = spec_case()
    del case["config"]
    assert parse_case(case).config == SizingConfig()
    case["config"] = {"risk_percent": "1.5"}
    assert parse_case(case).config == SizingConfig(risk_percent=D("1.5"))


def test_rejection_reasons_are_results_not_file_errors() -> None:
    assert parse_case(with_value("setup.side", "long")).size().reason == "invalid_setup"
    assert parse_case(with_value("setup.entries", [])).size().reason == "invalid_setup"
    assert parse_case(with_value("setup.sl", 2)).size().reason == "invalid_stop"
    assert parse_case(with_value("account.equity", 0)).size().reason == "no_equity"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("account.equity", DELETE, "account.equity: is required"),
        ("symbol.volume_step", DELETE, "symbol.volume_step: is required"),
        ("setup.sl", DELETE, "setup.sl: is required"),
        ("account.equity", True, "account.equity: must be a number (got true)"),
        ("account.equity", None, "account.equity: must be a number (got null)"),
        ("account.equity", "1_000", "account.equity: must be a number"),
        ("account.equity", " 100", "account.equity: must be a number"),
        ("account.equity", "NaN", "account.equity: must be a number"),
        ("account.currency", "", "account.currency: must be a non-empty string"),
        ("account.snapshot_age_seconds", -1, "account.snapshot_age_seconds: must be a number >= 0"),
        ("symbol.volume_step", 0, "symbol.volume_step: must be a positive number (got 0)"),
        ("symbol.trade_tick_size", -0.00001, "symbol.trade_tick_size: must be a positive number"),
        ("symbol.trade_tick_value", 0, "symbol.trade_tick_value: must be a positive number"),
        ("symbol.margin_per_lot", -1, "symbol.margin_per_lot: must be a number >= 0"),
        ("symbol.volume_min", 101, "symbol.volume_min: must not exceed volume_max"),
        ("symbol.digits", 5.5, "symbol.digits: must be an integer >= 0"),
        ("symbol.digits", -1, "symbol.digits: must be an integer >= 0"),
        ("symbol.name", 7, "symbol.name: must be a non-empty string"),
        ("setup.side", 1, "setup.side: must be a string"),
        ("setup.entries", "1.0850", "setup.entries: must be an array"),
        ("setup.entries", [1.085, "x"], "setup.entries[1]: must be a number"),
        ("config.risk_percent", 60, "config.risk_percent: must be a number from 0.1 to 50"),
        ("config.entry_splits", [50, 40], "config.entry_splits: parts must sum to exactly 100"),
        ("config.entry_splits", [25, 25, 25, 25], "config.entry_splits: must be 1 to 3 parts"),
        ("config.margin_buffer_percent", -1, "config.margin_buffer_percent: must be a number from 0 to 100"),
        ("config.max_snapshot_age_seconds", 9, "config.max_snapshot_age_seconds: must be a whole number"),
        ("config.max_snapshot_age_seconds", 30.5, "config.max_snapshot_age_seconds: must be a whole number"),
        ("config.risk_pct", 3, "config.risk_pct: unknown setting"),
    ],
)
def test_malformed_fields_name_their_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_case(with_value(path, value))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "top level: must be an object"),
        ('{"case": 3}', "case: must be an object"),
        ('{"config": {}}', "account: is required"),
        (
            SPEC_CASE_TEXT.replace('"equity": 10000', '"equity": NaN'),
            "account.equity: must be a finite number",
        ),
        (SPEC_CASE_TEXT.replace('"sl": 1.0800', '"sl": -Infinity'), "setup.sl: must be a finite number"),
        (
            SPEC_CASE_TEXT.replace('"balance": 10000', '"equity": 1, "balance": 10000'),
            'duplicate key "equity"',
        ),
        (SPEC_CASE_TEXT.replace('"account": {', '"account": 1, "x": {'), "account: must be an object"),
    ],
)
def test_malformed_text_is_a_case_file_error(text: str, message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_case(text)
    assert str(caught.value).startswith(message)


def test_bytes_that_are_not_utf8_are_a_case_file_error() -> None:
    with pytest.raises(CaseFileError, match="not UTF-8"):
        parse_case(b"\xff\xfe{")


# ---------------------------------------------------------------- the command, as a process


def run_command(arg: str, *, stdin: str | bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    # An unreachable database proves the command never touches one.
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:9/unreachable"
    return subprocess.run(  # noqa: S603 - fixed argv, our own manage.py
        [sys.executable, "manage.py", "size_case", arg],
        cwd=ROOT,
        env=env,
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_command_prints_the_shared_example_result() -> None:
    done = run_command(str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(EXAMPLE.read_text())["expected"] | {"capped_by": None}
    assert done.stderr == b""


def test_command_reads_stdin_and_a_rejection_exits_zero() -> None:
    done = run_command("-", stdin=json.dumps(with_value("account.snapshot_age_seconds", 301)))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["approved"] is False
    assert result["reason"] == "stale_account"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),  # the file does not exist
        (b"\xff\xfe", "not UTF-8"),
        ("{not json", "not valid JSON"),
        (json.dumps(with_value("account.equity", DELETE)), "account.equity: is required"),
        (json.dumps(with_value("setup.entries", {"a": 1})), "setup.entries: must be an array"),
        (json.dumps(with_value("account.margin_free", False)), "account.margin_free: must be a number"),
        (SPEC_CASE_TEXT.replace('"equity": 10000', '"equity": Infinity'), "account.equity: must be a finite"),
        (json.dumps(with_value("symbol.trade_tick_size", -1)), "symbol.trade_tick_size: must be a positive"),
        (json.dumps(with_value("symbol.volume_step", "0")), "symbol.volume_step: must be a positive"),
        (json.dumps(with_value("symbol.volume_min", 1000)), "symbol.volume_min: must not exceed volume_max"),
        (json.dumps(with_value("config.entry_splits", [60, 60])), "config.entry_splits: parts must sum"),
        (json.dumps(with_value("account.equity", "1." + "0" * 60 + "1")), "numbers too precise"),
    ],
)
def test_command_bad_input_exits_2_with_stderr_only(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "case.json"
    if content is not None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    done = run_command(str(path))
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().startswith("size_case: ")
    assert message in done.stderr.decode()
