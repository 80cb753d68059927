"""Netting accounts (shared/spec/reconciliation.md, "Netting accounts") against the pure matcher and the case file."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from core.shared_cases import shared_case_path
from reconciliation.case_file import parse_case
from reconciliation.matching import (
    NetMatch,
    ReconciliationInputError,
    ReconciliationResult,
    SymbolSpec,
    reconcile,
)
from reconciliation.tests.test_matching import SYMBOLS, deal, position, trade

NETTING_EXAMPLE = shared_case_path("reconcile-netting-example.json")
D = Decimal


def net(trades: list, positions: list, deals: list | None = None, **kwargs: object) -> ReconciliationResult:
    return reconcile(
        symbols=kwargs.pop("symbols", SYMBOLS),  # type: ignore[arg-type]
        bot_trades=trades,
        positions=positions,
        deals=deals or (),
        margin_mode="netting",
        **kwargs,  # type: ignore[arg-type]
    )


def only_net(result: ReconciliationResult) -> NetMatch:
    assert len(result.net_matches) == 1
    return result.net_matches[0]


def kinds(match: NetMatch) -> list[str]:
    return [d.kind for d in match.divergences]


def _normalise(data: object) -> object:
    return json.loads(json.dumps(data), parse_float=Decimal)


# ---------------------------------------------------------------- the shared example


def test_shared_netting_example_is_reproduced_exactly() -> None:
    example = json.loads(NETTING_EXAMPLE.read_text())
    assert _normalise(parse_case(example["case"]).reconcile().to_dict()) == _normalise(example["expected"])


def test_shared_netting_example_through_the_command() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("reconcile_case", str(NETTING_EXAMPLE), stdout=stdout, stderr=stderr)
    expected = json.loads(NETTING_EXAMPLE.read_text(), parse_float=Decimal)["expected"]
    assert (json.loads(stdout.getvalue(), parse_float=Decimal), stderr.getvalue()) == (expected, "")


def test_margin_mode_defaults_to_hedging_and_null_is_absent() -> None:
    example = json.loads(NETTING_EXAMPLE.read_text())["case"]
    del example["margin_mode"]
    assert parse_case(example).margin_mode == "hedging"
    example["margin_mode"] = None
    assert parse_case(example).margin_mode == "hedging"


def test_unknown_margin_mode_is_refused_by_the_matcher() -> None:
    with pytest.raises(ReconciliationInputError, match="margin mode"):
        reconcile(symbols=SYMBOLS, bot_trades=[], positions=[], margin_mode="exchange")  # type: ignore[arg-type]


def test_hedging_results_have_an_empty_net_matches_list() -> None:
    result = reconcile(symbols=SYMBOLS, bot_trades=[trade(ticket=100)], positions=[position(100)])
    assert result.to_dict()["net_matches"] == []


# ---------------------------------------------------------------- groups


def test_three_entries_net_into_one_position_without_divergence() -> None:
    trades = [
        trade("e1", volume="0.5", entry="1.08000", sl="1.07", tp="1.09"),
        trade("e2", volume="0.3", entry="1.08100", sl="1.07", tp="1.09"),
        trade("e3", volume="0.2", entry="1.08200", sl="1.07", tp="1.09"),
    ]
    # mean entry (0.5*1.08 + 0.3*1.081 + 0.2*1.082) / 1.0 = 1.0807
    result = net(trades, [position(100, volume="1.00", price="1.08070", sl="1.07", tp="1.09")])
    match = only_net(result)
    assert match.to_dict() == {
        "bot_trades": ["e1", "e2", "e3"],
        "ticket": 100,
        "method": "net",
        "divergences": [],
    }
    assert (result.matches, result.missing_positions, result.unmatched_positions) == ((), (), ())


def test_tickets_and_tags_play_no_part_on_a_netting_account() -> None:
    trades = [trade("a", ticket=999, tag="x"), trade("b", ticket=100, tag="y")]
    match = only_net(net(trades, [position(555, volume="2.00", comment="z")]))
    assert (match.bot_trade_ids, match.ticket) == (("a", "b"), 555)


def test_net_matches_are_ordered_by_each_group_s_first_bot_trade() -> None:
    trades = [trade("g1", symbol="GBPUSD"), trade("e1"), trade("g2", symbol="GBPUSD")]
    result = net(trades, [position(1, volume="1.00"), position(2, symbol="GBPUSD", volume="2.00")])
    assert [(m.bot_trade_ids, m.ticket) for m in result.net_matches] == [(("g1", "g2"), 2), (("e1",), 1)]


def test_the_lowest_ticket_wins_when_several_terminal_names_share_a_canonical() -> None:
    result = net([trade("e1")], [position(7, symbol="EURUSD.m"), position(5, symbol="EURUSD")])
    assert only_net(result).ticket == 5
    assert [u.to_dict() for u in result.unmatched_positions] == [{"ticket": 7, "symbol": "EURUSD"}]


def test_a_position_no_group_claims_is_unmatched() -> None:
    result = net([trade("e1")], [position(1), position(2, symbol="GBPUSD")])
    assert only_net(result).ticket == 1
    assert [u.ticket for u in result.unmatched_positions] == [2]


def test_a_zero_net_group_expects_no_position_and_misses_nothing() -> None:
    result = net([trade("b", side="buy", volume="0.3"), trade("s", side="sell", volume="0.30")], [])
    assert (result.net_matches, result.missing_positions) == ((), ())
    assert [(g.bot_trade_ids, g.symbol) for g in result.zero_net_groups] == [(("b", "s"), "EURUSD")]


def test_a_position_whose_group_nets_to_zero_is_unmatched() -> None:
    result = net([trade("b", side="buy"), trade("s", side="sell")], [position(9)])
    assert result.net_matches == ()
    assert [u.ticket for u in result.unmatched_positions] == [9]


def test_a_group_without_its_position_is_missing_with_each_trade_s_close_reason() -> None:
    trades = [trade("a", ticket=100), trade("other", symbol="GBPUSD"), trade("b"), trade("c", ticket=300)]
    deals = [deal(1, position_id=100, reason=4), deal(2, position_id=300, entry=3)]
    result = net(trades, [position(5, symbol="GBPUSD")], deals)
    assert [m.to_dict() for m in result.missing_positions] == [
        {"bot_trade": "a", "closed_by": "stop_loss"},
        {"bot_trade": "b", "closed_by": "unknown"},
        {"bot_trade": "c", "closed_by": "close_by"},
    ]


# ---------------------------------------------------------------- divergences of a net match


def test_side_mismatch_against_the_net_direction() -> None:
    trades = [trade("b", side="buy", volume="0.2"), trade("s", side="sell", volume="0.5")]
    match = only_net(net(trades, [position(1, type=0, volume="0.3")]))
    assert [d.to_dict() for d in match.divergences] == [
        {"kind": "side_mismatch", "expected": "sell", "actual": "buy"}
    ]


def test_entry_is_the_volume_weighted_mean_of_the_net_side_only() -> None:
    trades = [
        trade("b1", side="buy", volume="0.6", entry="1.10000"),
        trade("s1", side="sell", volume="0.2", entry="1.20000"),  # the other side: not in the mean
        trade("b2", side="buy", volume="0.2", entry="1.10400"),
    ]
    # mean of buys = (0.6*1.1 + 0.2*1.104) / 0.8 = 1.101: 5 pips from 1.1015 -> none, 6 pips from 1.1016 -> slippage
    assert kinds(only_net(net(trades, [position(1, volume="0.6", price="1.10150")]))) == []
    match = only_net(net(trades, [position(1, volume="0.6", price="1.10160")]))
    assert [d.to_dict() for d in match.divergences] == [{"kind": "entry_slippage", "pips": 6.0}]


@pytest.mark.parametrize(
    ("volume", "diverges"), [("0.54", False), ("0.66", False), ("0.539", True), ("0.661", True)]
)
def test_volume_mismatch_is_strictly_above_ten_percent_of_the_net(volume: str, diverges: bool) -> None:
    trades = [trade("a", side="sell", volume="0.4"), trade("b", side="sell", volume="0.2")]
    match = only_net(net(trades, [position(1, type=1, volume=volume)]))
    expected = [{"kind": "volume_mismatch", "expected": 0.6, "actual": float(volume)}] if diverges else []
    assert [d.to_dict() for d in match.divergences] == expected


def test_sl_is_compared_only_when_every_trade_has_the_same_sl() -> None:
    same = [trade("a", sl="1.07"), trade("b", sl="1.0700")]
    match = only_net(net(same, [position(1, volume="2.00", sl="1.06")]))
    assert [d.to_dict() for d in match.divergences] == [
        {"kind": "sl_mismatch", "expected": 1.07, "actual": 1.06}
    ]
    different = [trade("a", sl="1.07"), trade("b", sl="1.071")]
    assert kinds(only_net(net(different, [position(1, volume="2.00", sl="1.06")]))) == []


def test_no_sl_counts_as_a_value_shared_by_every_trade() -> None:
    none = [trade("a"), trade("b", sl="0")]
    match = only_net(net(none, [position(1, volume="2.00", sl="1.06")]))
    assert [d.to_dict() for d in match.divergences] == [
        {"kind": "sl_mismatch", "expected": None, "actual": 1.06}
    ]
    one_none = [trade("a"), trade("b", sl="1.06")]  # none and a value: not the same, so not compared
    assert kinds(only_net(net(one_none, [position(1, volume="2.00", sl="1.06")]))) == []


def test_tp_follows_the_same_rule() -> None:
    trades = [trade("a", tp="1.09"), trade("b", tp="1.09")]
    match = only_net(net(trades, [position(1, volume="2.00", tp="0")]))
    assert [d.to_dict() for d in match.divergences] == [
        {"kind": "tp_mismatch", "expected": 1.09, "actual": None}
    ]


def test_divergences_come_in_the_table_s_order() -> None:
    trades = [trade("a", side="buy", volume="1.0", entry="1.08000", sl="1.07", tp="1.09")]
    match = only_net(net(trades, [position(1, type=1, volume="0.5", price="1.09000", sl="1.05", tp="1.20")]))
    assert kinds(match) == [
        "side_mismatch",
        "entry_slippage",
        "volume_mismatch",
        "sl_mismatch",
        "tp_mismatch",
    ]


def test_pips_use_the_position_s_symbol_spec() -> None:
    symbols = {**SYMBOLS, "XAUUSD": SymbolSpec(name="XAUUSD", digits=2, point=D("0.01"), pip=D("0.1"))}
    trades = [trade("g", symbol="XAUUSD", volume="0.05", entry="2010.0")]
    match = only_net(
        net(trades, [position(1, symbol="XAUUSD+", volume="0.05", price="2011.2")], symbols=symbols)
    )
    assert [d.to_dict() for d in match.divergences] == [{"kind": "entry_slippage", "pips": 12.0}]


def test_command_refuses_an_unknown_margin_mode_with_exit_2(tmp_path: Path) -> None:
    case = json.loads(NETTING_EXAMPLE.read_text())["case"]
    case["margin_mode"] = "exchange"
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile_case", str(path), stdout=stdout, stderr=stderr)
    assert (exited.value.code, stdout.getvalue()) == (2, "")
    assert 'margin_mode: must be "hedging" or "netting" (got "exchange")' in stderr.getvalue()
