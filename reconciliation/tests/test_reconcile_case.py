"""The case-file format and the `reconcile_case` command (no database)."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from core.shared_cases import shared_case_path
from reconciliation.case_file import CaseFileError, parse_case
from reconciliation.matching import Tolerances

EXAMPLE = shared_case_path("reconcile-example.json")
ROOT = Path(__file__).resolve().parents[2]


def example_case() -> dict[str, Any]:
    return copy.deepcopy(json.loads(EXAMPLE.read_text())["case"])


def expected_output() -> object:
    # The example predates net_matches; on a hedging account the spec makes it an empty list.
    return _normalise({"net_matches": [], **json.loads(EXAMPLE.read_text())["expected"]})


def _normalise(data: object) -> object:
    return json.loads(json.dumps(data), parse_float=Decimal)


def minimal_case() -> dict[str, Any]:
    return {
        "symbols": {"EURUSD.m": {"canonical": "EURUSD", "digits": 5, "point": 0.00001}},
        "bot_trades": [
            {"id": "bt-1", "symbol": "EURUSD", "side": "buy", "volume": 0.5, "entry_price": 1.085}
        ],
        "positions": [
            {"ticket": 1, "time": 1, "type": 0, "volume": 0.5, "price_open": 1.08507, "symbol": "EURUSD.m"}
        ],
    }


# ---------------------------------------------------------------- parse_case


def test_parses_the_shared_example_dict_and_text() -> None:
    case = parse_case(example_case())
    assert len(case.bot_trades) == 4
    assert len(case.positions) == 4
    assert len(case.deals) == 1
    assert case.tolerances == Tolerances()
    assert case.symbols["EURUSD.pro"].canonical == "EURUSD"
    assert case.symbols["EURUSD"].canonical == "EURUSD"
    assert case.symbols["XAUUSD"].pip == Decimal("0.1")
    assert parse_case(EXAMPLE.read_text()) == parse_case(EXAMPLE.read_bytes())


def test_floats_become_their_shortest_decimal() -> None:
    case = parse_case(example_case())
    assert case.symbols["EURUSD"].point == Decimal("0.00001")
    assert case.positions[2].price_open == Decimal("1.07812")
    assert case.bot_trades[1].volume == Decimal("0.04")


def test_json_text_keeps_literal_digits() -> None:
    case = parse_case(json.dumps(minimal_case()))
    assert case.symbols["EURUSD.m"].point == Decimal("0.00001")
    assert case.bot_trades[0].entry_price == Decimal("1.085")


def test_decimal_strings_are_accepted_for_numbers() -> None:
    data = minimal_case()
    data["symbols"]["EURUSD.m"]["point"] = "0.00001"
    data["bot_trades"][0].update(volume="0.50", entry_price="1.08500", sl="1.08", tp="0", ticket="1")
    data["positions"][0].update(volume="0.5", price_open="1.08507", ticket="1", time="1")
    case = parse_case(data)
    trade = case.bot_trades[0]
    assert (trade.volume, trade.entry_price, trade.sl, trade.tp, trade.ticket) == (
        Decimal("0.50"),
        Decimal("1.08500"),
        Decimal("1.08"),
        Decimal("0"),
        1,
    )
    assert case.reconcile().to_dict()["matches"][0]["method"] == "ticket"


def test_optional_fields_default_to_none() -> None:
    case = parse_case(minimal_case())
    trade, position = case.bot_trades[0], case.positions[0]
    assert (trade.sl, trade.tp, trade.ticket, trade.magic, trade.tag) == (None, None, None, None, None)
    assert (position.sl, position.tp, position.magic, position.comment) == (None, None, 0, "")
    assert case.deals == ()
    assert case.tolerances == Tolerances()


def test_extra_fields_are_ignored() -> None:
    data = minimal_case()
    data["note"] = "replayed for ticket #123"
    data["symbols"]["EURUSD.m"]["description"] = "Euro"
    data["bot_trades"][0]["approval_id"] = 17
    data["positions"][0].update(identifier=1, reason=3, price_current=1.09, swap=0.0, external_id="")
    data["deals"] = [
        {"ticket": 5, "time": 2, "entry": 1, "position_id": 9, "reason": 4, "profit": -3.5, "fee": 0.0}
    ]
    assert parse_case(data).reconcile() == parse_case(minimal_case()).reconcile()


def test_tolerances_override_defaults() -> None:
    data = minimal_case()
    data["tolerances"] = {"match_entry_pips": "0.5", "sltp_pips": 3}
    tolerances = parse_case(data).tolerances
    assert tolerances == Tolerances(match_entry_pips=Decimal("0.5"), sltp_pips=Decimal(3))
    # 0.7 pips away is now too far for the tolerance pass.
    result = parse_case(data).reconcile().to_dict()
    assert result["matches"] == []
    assert result["missing_positions"] == [{"bot_trade": "bt-1", "closed_by": "unknown"}]


def test_a_file_wrapping_the_case_under_case_is_read() -> None:
    wrapped = json.loads(EXAMPLE.read_text())
    assert parse_case(wrapped) == parse_case(wrapped["case"])


def _with(path: list[str | int], value: object, *, delete: bool = False) -> dict[str, Any]:
    data = example_case()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


BAD_CASES: list[tuple[list[str | int], object, bool, str]] = [
    # (where, value, delete, message fragment)
    (["symbols"], None, True, "symbols: is required"),
    (["bot_trades"], None, True, "bot_trades: is required"),
    (["positions"], None, True, "positions: is required"),
    (["symbols"], [], False, "symbols: must be an object"),
    (["bot_trades"], {}, False, "bot_trades: must be an array"),
    (["deals"], "none", False, "deals: must be an array"),
    (["symbols", "XAUUSD", "point"], 0, False, "symbols.XAUUSD.point: must be a positive number"),
    (["symbols", "XAUUSD", "digits"], None, True, "symbols.XAUUSD.digits: is required"),
    (["symbols", "XAUUSD", "digits"], 2.5, False, "symbols.XAUUSD.digits: must be an integer"),
    (["symbols", "XAUUSD", "pip"], -0.1, False, "symbols.XAUUSD.pip: must be a positive number"),
    (["symbols", "EURUSD.pro", "canonical"], "", False, "symbols.EURUSD.pro.canonical: must be a non-empty"),
    (["bot_trades", 2, "volume"], 0, False, "bot_trades[2].volume: must be a positive number (got 0)"),
    (["bot_trades", 2, "volume"], -0.2, False, "bot_trades[2].volume: must be a positive number (got -0.2)"),
    (["bot_trades", 2, "volume"], "lots", False, "bot_trades[2].volume: must be a positive number"),
    (["bot_trades", 2, "volume"], True, False, "bot_trades[2].volume: must be a positive number (got true)"),
    (["bot_trades", 2, "volume"], float("nan"), False, "bot_trades[2].volume: must be a positive number"),
    (["bot_trades", 2, "volume"], float("inf"), False, "bot_trades[2].volume: must be a positive number"),
    (["bot_trades", 2, "volume"], "NaN", False, "bot_trades[2].volume: must be a positive number"),
    (["bot_trades", 2, "volume"], None, True, "bot_trades[2].volume: is required"),
    (["bot_trades", 2, "side"], "long", False, 'bot_trades[2].side: must be "buy" or "sell" (got "long")'),
    (["bot_trades", 2, "side"], "BUY", False, "bot_trades[2].side: must be"),
    (["bot_trades", 2, "symbol"], "GBPUSD", False, "bot_trades[2].symbol: unknown symbol"),
    (["bot_trades", 2, "symbol"], 5, False, "bot_trades[2].symbol: must be"),
    (["bot_trades", 2, "id"], None, True, "bot_trades[2].id: is required"),
    (["bot_trades", 2, "id"], 102, False, "bot_trades[2].id: must be a non-empty string"),
    (["bot_trades", 2, "id"], "sig-101-e1", False, "bot_trades[2].id: duplicate of bot_trades[0].id"),
    (["bot_trades", 2, "entry_price"], -1, False, "bot_trades[2].entry_price: must be a positive number"),
    (["bot_trades", 2, "sl"], -1, False, "bot_trades[2].sl: must be a non-negative number"),
    (["bot_trades", 2, "ticket"], 1.5, False, "bot_trades[2].ticket: must be an integer"),
    (["bot_trades", 2, "ticket"], 0, False, "bot_trades[2].ticket: must be an integer >= 1"),
    (["bot_trades", 2, "magic"], False, False, "bot_trades[2].magic: must be an integer"),
    (["bot_trades", 2, "tag"], 7, False, "bot_trades[2].tag: must be a string"),
    (["bot_trades", 1], "sig", False, "bot_trades[1]: must be an object"),
    (["positions", 3, "symbol"], "EURUSD.m", False, "positions[3].symbol: unknown symbol"),
    (["positions", 3, "volume"], 0.0, False, "positions[3].volume: must be a positive number"),
    (["positions", 3, "type"], 2, False, "positions[3].type: must be 0 (buy) or 1 (sell)"),
    (["positions", 3, "type"], "sell", False, "positions[3].type: must be an integer"),
    (["positions", 3, "ticket"], None, True, "positions[3].ticket: is required"),
    (["positions", 3, "ticket"], 880001, False, "positions[3].ticket: duplicate of positions[0].ticket"),
    (["positions", 3, "time"], "yesterday", False, "positions[3].time: must be an integer"),
    (["positions", 3, "price_open"], None, True, "positions[3].price_open: is required"),
    (["positions", 3, "comment"], 12, False, "positions[3].comment: must be a string"),
    (["deals", 0, "position_id"], None, True, "deals[0].position_id: is required"),
    (["deals", 0, "reason"], "tp", False, "deals[0].reason: must be an integer"),
    (["tolerances"], {"slippage_pips": -1}, False, "tolerances.slippage_pips: must be a non-negative number"),
    (["tolerances"], {"slipage_pips": 3}, False, "tolerances.slipage_pips: unknown tolerance"),
    (["tolerances"], 5, False, "tolerances: must be an object"),
    (["margin_mode"], "exchange", False, 'margin_mode: must be "hedging" or "netting" (got "exchange")'),
    (["margin_mode"], "Netting", False, 'margin_mode: must be "hedging" or "netting" (got "Netting")'),
    (["margin_mode"], 0, False, 'margin_mode: must be "hedging" or "netting" (got 0)'),
    (["margin_mode"], "", False, 'margin_mode: must be "hedging" or "netting"'),
]


@pytest.mark.parametrize(("path", "value", "delete", "message"), BAD_CASES)
def test_bad_case_names_the_path(path: list[str | int], value: object, delete: bool, message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_case(_with(path, value, delete=delete))
    assert message in str(caught.value)
    assert str(caught.value).startswith(message.split(":")[0] + ":")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "malformed JSON"),
        ("", "malformed JSON"),
        ('{"symbols": {}} trailing', "malformed JSON"),
        ('{"symbols": {"X": {"digits": 5, "point": NaN}}, "bot_trades": [], "positions": []}', "NaN"),
        (
            '{"symbols": {"X": {"digits": 5, "point": Infinity}}, "bot_trades": [], "positions": []}',
            "Infinity",
        ),
        ("[]", "case file: must be an object (got an array)"),
    ],
)
def test_bad_json_text(text: str, message: str) -> None:
    with pytest.raises(CaseFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_case(text)


def test_non_utf8_bytes_are_rejected() -> None:
    with pytest.raises(CaseFileError, match="UTF-8"):
        parse_case(b'{"symbols": "\xff"}')


def test_wrapped_case_paths_are_prefixed() -> None:
    wrapped = {"case": _with(["bot_trades", 0, "side"], "hold")}
    with pytest.raises(CaseFileError, match=r"^case\.bot_trades\[0\]\.side: "):
        parse_case(wrapped)


def test_case_file_error_is_a_value_error() -> None:
    assert issubclass(CaseFileError, ValueError)


# ---------------------------------------------------------------- command, in process


def run_command(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("reconcile_case", *args, stdout=stdout, stderr=stderr)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, stdout.getvalue(), stderr.getvalue()


def write_case(tmp_path: Path, data: object) -> str:
    path = tmp_path / "case.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_command_prints_the_shared_example_result() -> None:
    code, out, err = run_command(str(EXAMPLE))
    assert (code, err) == (0, "")
    assert json.loads(out, parse_float=Decimal) == expected_output()


@pytest.mark.parametrize(("path", "value", "delete", "message"), BAD_CASES)
def test_command_rejects_bad_case_with_exit_2(
    tmp_path: Path, path: list[str | int], value: object, delete: bool, message: str
) -> None:
    # json.dumps writes a float NaN/Infinity as the bare constant, which the reader rejects as JSON.
    text = json.dumps(_with(path, value, delete=delete))
    code, out, err = run_command(write_case(tmp_path, text))
    assert code == 2
    assert out == ""
    assert err.startswith("reconcile_case: ")
    is_constant = isinstance(value, float) and not Decimal(str(value)).is_finite()
    assert ("is not a number JSON allows" if is_constant else message) in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "malformed JSON"),
        ("", "malformed JSON"),
        ('{"symbols": {"X": {"digits": 5, "point": NaN}}, "bot_trades": [], "positions": []}', "NaN"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_command_rejects_malformed_json_with_exit_2(tmp_path: Path, text: str, message: str) -> None:
    code, out, err = run_command(write_case(tmp_path, text))
    assert (code, out) == (2, "")
    assert message in err


def test_command_rejects_missing_file_with_exit_2(tmp_path: Path) -> None:
    code, out, err = run_command(str(tmp_path / "nope.json"))
    assert (code, out) == (2, "")
    assert "cannot read" in err
    assert "nope.json" in err


def test_command_rejects_a_directory_with_exit_2(tmp_path: Path) -> None:
    code, out, err = run_command(str(tmp_path))
    assert (code, out) == (2, "")
    assert "cannot read" in err


# ---------------------------------------------------------------- command, as a process


def manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        # Nothing listens here: proves the command never opens a database connection.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
    }
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", "reconcile_case", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_process_prints_result_and_exits_0_without_a_database() -> None:
    done = manage(str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout, parse_float=Decimal) == expected_output()


def test_process_reads_stdin_with_dash() -> None:
    done = manage("-", stdin=json.dumps(example_case()))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout, parse_float=Decimal) == expected_output()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["/nonexistent/case.json"], None, "cannot read /nonexistent/case.json"),
        (["-"], '{"symbols": ', "malformed JSON"),
        (
            ["-"],
            json.dumps(_with(["positions", 0, "symbol"], "BTCUSD")),
            "positions[0].symbol: unknown symbol",
        ),
        (["-"], json.dumps(_with(["bot_trades", 0, "side"], "short")), "bot_trades[0].side: must be"),
        (
            ["-"],
            json.dumps(_with(["bot_trades", 0, "volume"], -1)),
            "bot_trades[0].volume: must be a positive",
        ),
    ],
)
def test_process_rejects_bad_input_with_exit_2(args: list[str], stdin: str | None, message: str) -> None:
    done = manage(*args, stdin=stdin)
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr
