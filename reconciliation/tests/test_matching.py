"""Rules of shared/spec/reconciliation.md, one by one, against the pure matcher (no database)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.shared_cases import shared_case_path
from reconciliation.case_file import parse_case
from reconciliation.matching import (
    BotTrade,
    Deal,
    Divergence,
    LivePosition,
    Match,
    ReconciliationInputError,
    ReconciliationResult,
    SymbolSpec,
    SymbolTable,
    Tolerances,
    UnknownSymbolError,
    close_reason,
    reconcile,
)

EXAMPLE = shared_case_path("reconcile-example.json")
D = Decimal

SYMBOLS = {
    "EURUSD": SymbolSpec(name="EURUSD", digits=5, point=D("0.00001")),
    "EURUSD.m": SymbolSpec(name="EURUSD.m", digits=5, point=D("0.00001"), canonical="EURUSD"),
    "GBPUSD": SymbolSpec(name="GBPUSD", digits=5, point=D("0.00001")),
    "XAUUSD+": SymbolSpec(name="XAUUSD+", digits=2, point=D("0.01"), canonical="XAUUSD", pip=D("0.1")),
    "USDJPY": SymbolSpec(name="USDJPY", digits=3, point=D("0.001")),
    "US500": SymbolSpec(name="US500", digits=2, point=D("0.01")),
}


def trade(
    id: str = "bt-1",
    *,
    symbol: str = "EURUSD",
    side: str = "buy",
    volume: str = "1.00",
    entry: str = "1.08000",
    sl: str | None = None,
    tp: str | None = None,
    ticket: int | None = None,
    magic: int | None = None,
    tag: str | None = None,
) -> BotTrade:
    return BotTrade(
        id=id,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        volume=D(volume),
        entry_price=D(entry),
        sl=None if sl is None else D(sl),
        tp=None if tp is None else D(tp),
        ticket=ticket,
        magic=magic,
        tag=tag,
    )


def position(
    ticket: int = 100,
    *,
    time: int = 1_763_900_000,
    type: int = 0,
    magic: int = 0,
    volume: str = "1.00",
    price: str = "1.08000",
    sl: str | None = None,
    tp: str | None = None,
    symbol: str = "EURUSD",
    comment: str = "",
) -> LivePosition:
    return LivePosition(
        ticket=ticket,
        time=time,
        type=type,
        magic=magic,
        volume=D(volume),
        price_open=D(price),
        sl=None if sl is None else D(sl),
        tp=None if tp is None else D(tp),
        symbol=symbol,
        comment=comment,
    )


def deal(
    ticket: int, *, position_id: int, entry: int = 1, reason: int = 0, time: int = 1_763_900_500
) -> Deal:
    return Deal(
        ticket=ticket,
        order=ticket + 1,
        time=time,
        type=1,
        entry=entry,
        magic=0,
        position_id=position_id,
        reason=reason,
        volume=D("1.00"),
        price=D("1.08"),
        symbol="EURUSD",
        comment="",
    )


def run(
    trades: list[BotTrade],
    positions: list[LivePosition],
    deals: list[Deal] | None = None,
    tolerances: Tolerances | None = None,
) -> ReconciliationResult:
    return reconcile(
        symbols=SYMBOLS,
        bot_trades=trades,
        positions=positions,
        deals=deals or (),
        tolerances=tolerances or Tolerances(),
    )


def pairs(result: ReconciliationResult) -> list[tuple[str, int, str]]:
    return [(m.bot_trade_id, m.ticket, m.method) for m in result.matches]


def only_match(result: ReconciliationResult) -> Match:
    assert len(result.matches) == 1
    return result.matches[0]


def kinds(match: Match) -> list[str]:
    return [d.kind for d in match.divergences]


# ---------------------------------------------------------------- shared example


def _normalise(data: object) -> object:
    return json.loads(json.dumps(data), parse_float=Decimal)


def _hedging_expected(expected: dict[str, object]) -> object:
    # The example predates net_matches; on a hedging account the spec makes it an empty list.
    return _normalise({"net_matches": [], **expected})


def test_shared_example_is_reproduced_exactly() -> None:
    example = json.loads(EXAMPLE.read_text())
    result = parse_case(example["case"]).reconcile().to_dict()
    assert _normalise(result) == _hedging_expected(example["expected"])


def test_shared_example_from_text_keeps_json_literals() -> None:
    example = EXAMPLE.read_text()
    result = parse_case(example).reconcile().to_dict()
    assert _normalise(result) == _hedging_expected(json.loads(example)["expected"])


# ---------------------------------------------------------------- pip rules and symbols


@pytest.mark.parametrize(
    ("digits", "point", "pip", "expected"),
    [
        (5, "0.00001", None, "0.0001"),
        (3, "0.001", None, "0.01"),
        (4, "0.0001", None, "0.0001"),
        (2, "0.01", None, "0.01"),
        (1, "0.1", None, "0.1"),
        (0, "1", None, "1"),
        (2, "0.01", "0.1", "0.1"),
        (5, "0.00001", "0.001", "0.001"),
    ],
)
def test_pip_size_rules(digits: int, point: str, pip: str | None, expected: str) -> None:
    spec = SymbolSpec(name="X", digits=digits, point=D(point), pip=None if pip is None else D(pip))
    assert spec.pip_size == D(expected)


def test_canonical_defaults_to_upper_cased_name() -> None:
    assert SymbolSpec(name="eurusd.m", digits=5, point=D("0.00001")).canonical == "EURUSD.M"


def test_symbol_spec_rejects_non_positive_point_and_pip() -> None:
    with pytest.raises(ReconciliationInputError):
        SymbolSpec(name="X", digits=5, point=D(0))
    with pytest.raises(ReconciliationInputError):
        SymbolSpec(name="X", digits=5, point=D("0.00001"), pip=D("-1"))


def test_broker_suffix_symbol_matches_through_the_table() -> None:
    result = run([trade(tag="s1")], [position(symbol="EURUSD.m", comment="s1")])
    assert pairs(result) == [("bt-1", 100, "tag")]
    assert only_match(result).divergences == ()


def test_unmatched_position_reports_canonical_symbol() -> None:
    result = run([], [position(7, symbol="XAUUSD+", price="2400.00")])
    assert result.to_dict()["unmatched_positions"] == [{"ticket": 7, "symbol": "XAUUSD"}]


@pytest.mark.parametrize("name", ["eurusd", "EurUsd", "EURUSD"])
def test_bot_trade_canonical_names_compare_case_insensitively(name: str) -> None:
    result = run([trade(symbol=name, tag="s1")], [position(symbol="EURUSD.m", comment="s1")])
    assert pairs(result) == [("bt-1", 100, "tag")]


def test_table_canonical_names_compare_case_insensitively() -> None:
    symbols = {"eurusd.x": SymbolSpec(name="eurusd.x", digits=5, point=D("0.00001"), canonical="EurUsd")}
    result = reconcile(
        symbols=symbols, bot_trades=[trade(symbol="EURUSD")], positions=[position(symbol="eurusd.x")]
    )
    assert pairs(result) == [("bt-1", 100, "fuzzy")]
    assert result.unmatched_positions == ()


def test_unknown_position_symbol_raises() -> None:
    with pytest.raises(UnknownSymbolError, match="AUDUSD"):
        run([], [position(symbol="AUDUSD")])


def test_terminal_symbol_names_are_exact() -> None:
    with pytest.raises(UnknownSymbolError):
        run([], [position(symbol="eurusd.m")])


def test_unknown_bot_trade_symbol_raises() -> None:
    with pytest.raises(UnknownSymbolError, match="AUDUSD"):
        run([trade(symbol="AUDUSD")], [])


def test_bot_trade_must_name_a_canonical_not_a_suffixed_terminal_name() -> None:
    with pytest.raises(UnknownSymbolError):
        run([trade(symbol="XAUUSD+")], [])


def test_unknown_symbol_error_is_a_value_error() -> None:
    assert issubclass(UnknownSymbolError, ValueError)


def test_prebuilt_symbol_table_gives_the_same_result() -> None:
    trades, positions = [trade(tag="s1")], [position(symbol="EURUSD.m", comment="s1")]
    table = SymbolTable(SYMBOLS)
    assert reconcile(symbols=table, bot_trades=trades, positions=positions) == run(trades, positions)


def test_duplicate_inputs_are_rejected() -> None:
    with pytest.raises(ReconciliationInputError, match="duplicate bot trade id"):
        run([trade("a"), trade("a")], [])
    with pytest.raises(ReconciliationInputError, match="duplicate position ticket"):
        run([], [position(1), position(1)])


def test_position_type_must_be_buy_or_sell() -> None:
    with pytest.raises(ReconciliationInputError, match="type"):
        run([], [position(type=2)])


# ---------------------------------------------------------------- pass 1: ticket


def test_ticket_is_authoritative_even_when_everything_else_differs() -> None:
    result = run(
        [
            trade(
                ticket=100, symbol="EURUSD", side="buy", volume="1.00", entry="1.08000", sl="1.07", tp="1.09"
            )
        ],
        [
            position(
                100, type=1, volume="0.50", price="1.31000", symbol="GBPUSD", magic=9, comment="x", tp="1.40"
            )
        ],
    )
    match = only_match(result)
    assert (match.ticket, match.method) == (100, "ticket")
    # Every divergence, in the order the spec lists them.
    assert kinds(match) == [
        "symbol_mismatch",
        "side_mismatch",
        "entry_slippage",
        "volume_mismatch",
        "sl_mismatch",
        "tp_mismatch",
    ]
    assert match.divergences[0] == Divergence("symbol_mismatch", {"expected": "EURUSD", "actual": "GBPUSD"})
    assert match.divergences[1] == Divergence("side_mismatch", {"expected": "buy", "actual": "sell"})
    assert match.divergences[3] == Divergence("volume_mismatch", {"expected": D("1.00"), "actual": D("0.50")})
    assert match.divergences[4] == Divergence("sl_mismatch", {"expected": D("1.07"), "actual": None})


def test_symbol_mismatch_reports_canonical_names() -> None:
    result = run([trade(ticket=5, symbol="eurusd")], [position(5, symbol="XAUUSD+", price="1.08000")])
    assert only_match(result).divergences[0].to_dict() == {
        "kind": "symbol_mismatch",
        "expected": "EURUSD",
        "actual": "XAUUSD",
    }


def test_ticket_pass_wins_over_an_earlier_tag_claim() -> None:
    result = run(
        [trade("by-tag", tag="s1"), trade("by-ticket", ticket=100)],
        [position(100, comment="s1")],
    )
    assert pairs(result) == [("by-ticket", 100, "ticket")]
    assert [m.bot_trade_id for m in result.missing_positions] == ["by-tag"]


def test_ticket_pass_wins_over_a_closer_fuzzy_candidate() -> None:
    result = run(
        [trade("fuzzy", entry="1.08000"), trade("by-ticket", ticket=100, entry="1.08015")],
        [position(100, price="1.08000")],
    )
    assert pairs(result) == [("by-ticket", 100, "ticket")]


def test_two_bot_trades_with_one_ticket_first_in_input_order_wins() -> None:
    result = run([trade("a", ticket=100), trade("b", ticket=100)], [position(100)])
    assert pairs(result) == [("a", 100, "ticket")]
    assert [m.bot_trade_id for m in result.missing_positions] == ["b"]


def test_bot_trade_whose_ticket_is_gone_is_missing_and_never_paired_by_tag() -> None:
    result = run(
        [trade(ticket=999, tag="s1")], [position(100, comment="s1")], [deal(1, position_id=999, reason=4)]
    )
    assert pairs(result) == []
    assert [m.to_dict() for m in result.missing_positions] == [
        {"bot_trade": "bt-1", "closed_by": "stop_loss"}
    ]
    assert [u.ticket for u in result.unmatched_positions] == [100]


def test_bot_trade_whose_ticket_is_gone_is_never_paired_by_tolerance() -> None:
    # The stopped-out bot trade and an unrelated manual trade at the same price: both must stay visible.
    result = run([trade(ticket=999)], [position(100)])
    assert pairs(result) == []
    assert [(m.bot_trade_id, m.closed_by) for m in result.missing_positions] == [("bt-1", "unknown")]
    assert [u.ticket for u in result.unmatched_positions] == [100]


def test_a_ticketless_bot_trade_still_takes_the_position_a_gone_ticket_left_alone() -> None:
    result = run([trade("gone", ticket=999), trade("fresh")], [position(100)])
    assert pairs(result) == [("fresh", 100, "fuzzy")]
    assert [m.bot_trade_id for m in result.missing_positions] == ["gone"]


# ---------------------------------------------------------------- pass 2: tag


def test_tag_matches_comment_exactly() -> None:
    result = run([trade(tag="sig-41", entry="1.09000")], [position(100, comment="sig-41", price="1.08000")])
    match = only_match(result)
    assert (match.ticket, match.method) == (100, "tag")
    assert kinds(match) == ["entry_slippage"]  # the tag pass does not check prices


@pytest.mark.parametrize("comment", ["SIG-41", "sig-41 ", "sig-4", "sig-411", ""])
def test_tag_needs_an_exact_comment(comment: str) -> None:
    # The price is far away so the tolerance pass cannot pick it up either.
    result = run([trade(tag="sig-41", entry="1.09000")], [position(100, comment=comment)])
    assert result.matches == ()


@pytest.mark.parametrize("tag", [None, ""])
def test_no_tag_never_matches_an_empty_comment(tag: str | None) -> None:
    result = run([trade(tag=tag, entry="1.09000")], [position(100, comment="")])
    assert result.matches == ()


def test_tag_requires_the_same_canonical_symbol() -> None:
    result = run([trade(tag="s1", symbol="GBPUSD")], [position(100, comment="s1", symbol="EURUSD")])
    assert result.matches == ()


def test_tag_requires_equal_magic_when_the_bot_trade_has_one() -> None:
    result = run([trade(tag="s1", magic=7, entry="1.09")], [position(100, comment="s1", magic=8)])
    assert result.matches == ()
    result = run([trade(tag="s1", magic=7)], [position(100, comment="s1", magic=7)])
    assert pairs(result) == [("bt-1", 100, "tag")]


def test_tag_ignores_magic_when_the_bot_trade_has_none() -> None:
    result = run([trade(tag="s1", magic=None)], [position(100, comment="s1", magic=12345)])
    assert pairs(result) == [("bt-1", 100, "tag")]


def test_tag_takes_the_lowest_ticket_among_qualifying_positions() -> None:
    result = run(
        [trade(tag="s1", magic=7)],
        [
            position(300, comment="s1", magic=7),
            position(100, comment="s1", magic=8),  # lowest, but wrong magic
            position(200, comment="s1", magic=7, time=1),
        ],
    )
    assert pairs(result)[0] == ("bt-1", 200, "tag")


def test_tag_bot_trades_are_taken_in_input_order() -> None:
    result = run(
        [trade("second", tag="s1", entry="1.20"), trade("first", tag="s1", entry="1.20")],
        [position(200, comment="s1"), position(100, comment="s1")],
    )
    assert pairs(result) == [("second", 100, "tag"), ("first", 200, "tag")]


def test_tag_pass_runs_before_the_tolerance_pass() -> None:
    # "near" would qualify for 100 by tolerance and comes first, but "tagged" claims 100 by tag.
    result = run(
        [trade("near", entry="1.08000"), trade("tagged", tag="s1", entry="1.10000")],
        [position(100, comment="s1", price="1.08000")],
    )
    assert pairs(result) == [("tagged", 100, "tag")]


# ---------------------------------------------------------------- pass 3: tolerance


def test_tolerance_match_is_reported_as_fuzzy() -> None:
    result = run([trade(entry="1.08000")], [position(100, price="1.08012", symbol="EURUSD.m")])
    assert pairs(result) == [("bt-1", 100, "fuzzy")]


def test_tolerance_needs_the_same_direction() -> None:
    result = run([trade(side="sell")], [position(100, type=0)])
    assert result.matches == ()
    result = run([trade(side="sell")], [position(100, type=1)])
    assert pairs(result) == [("bt-1", 100, "fuzzy")]


def test_tolerance_needs_the_same_canonical_symbol() -> None:
    result = run([trade(symbol="GBPUSD")], [position(100, symbol="EURUSD")])
    assert result.matches == ()


@pytest.mark.parametrize(
    ("volume", "qualifies"),
    [("1.05", True), ("1.051", False), ("0.95", True), ("0.949", False), ("1.00", True)],
)
def test_tolerance_volume_boundary_is_five_percent_inclusive(volume: str, qualifies: bool) -> None:
    result = run([trade(volume="1.00")], [position(100, volume=volume)])
    assert bool(result.matches) is qualifies


@pytest.mark.parametrize(
    ("price", "qualifies"),
    [
        ("1.08020", True),  # exactly 2 pips = 20 points
        ("1.08021", False),  # one point above
        ("1.07980", True),
        ("1.07979", False),
        ("1.080205", True),  # 20.5 points rounds half-even to 20
        ("1.080215", False),  # 21.5 points rounds half-even to 22
    ],
)
def test_tolerance_entry_boundary_is_two_pips_inclusive(price: str, qualifies: bool) -> None:
    result = run([trade(entry="1.08000")], [position(100, price=price)])
    assert bool(result.matches) is qualifies


def test_tolerance_entry_boundary_uses_explicit_pip() -> None:
    # XAUUSD pip 0.1 = 10 points: 2 pips = 0.20.
    near = run([trade(symbol="XAUUSD", entry="2400.00")], [position(1, symbol="XAUUSD+", price="2400.20")])
    far = run([trade(symbol="XAUUSD", entry="2400.00")], [position(1, symbol="XAUUSD+", price="2400.21")])
    assert bool(near.matches)
    assert not far.matches


def test_tolerances_are_configurable() -> None:
    wide = Tolerances(match_volume_percent=D(50), match_entry_pips=D(10))
    result = run([trade(volume="1.00")], [position(100, volume="1.40", price="1.08100")], tolerances=wide)
    assert pairs(result) == [("bt-1", 100, "fuzzy")]


def test_tie_break_smallest_entry_distance_first() -> None:
    result = run(
        [trade(volume="1.00", entry="1.08000")],
        [
            position(1, price="1.08005", volume="1.00", time=1),  # 5 points, no volume difference
            position(2, price="1.08003", volume="1.04", time=2),  # 3 points wins
        ],
    )
    assert pairs(result) == [("bt-1", 2, "fuzzy")]


def test_tie_break_then_smallest_volume_difference() -> None:
    result = run(
        [trade(volume="1.00", entry="1.08000")],
        [
            position(1, price="1.08003", volume="1.04", time=1),
            position(2, price="1.07997", volume="0.98", time=2),  # same 3 points, 0.02 < 0.04
        ],
    )
    assert pairs(result) == [("bt-1", 2, "fuzzy")]


def test_tie_break_then_earliest_position_time() -> None:
    result = run(
        [trade(volume="1.00", entry="1.08000")],
        [
            position(1, price="1.08003", volume="1.02", time=20),
            position(2, price="1.07997", volume="0.98", time=10),
        ],
    )
    assert pairs(result) == [("bt-1", 2, "fuzzy")]


def test_tie_break_then_lowest_ticket() -> None:
    result = run(
        [trade(volume="1.00", entry="1.08000")],
        [
            position(2, price="1.08003", volume="1.02", time=10),
            position(1, price="1.07997", volume="0.98", time=10),
        ],
    )
    assert pairs(result) == [("bt-1", 1, "fuzzy")]


def test_tie_break_then_earliest_bot_trade_in_input_order() -> None:
    result = run(
        [trade("b", entry="1.08003"), trade("a", entry="1.07997")],
        [position(1, price="1.08000")],
    )
    assert pairs(result) == [("b", 1, "fuzzy")]
    assert [m.bot_trade_id for m in result.missing_positions] == ["a"]


def test_tolerance_pass_is_greedy_over_all_pairs_not_input_order() -> None:
    # "first" is 5 points from 1 and 15 from 2; "second" sits exactly on 1 (and 20 from 2), so it wins 1,
    # and "first" takes 2 (15 points) instead of going missing.
    result = run(
        [trade("first", entry="1.08005"), trade("second", entry="1.08000")],
        [position(1, price="1.08000"), position(2, price="1.08020")],
    )
    assert pairs(result) == [("first", 2, "fuzzy"), ("second", 1, "fuzzy")]


def test_tolerance_pairs_across_suffixed_terminal_symbols_of_one_canonical() -> None:
    result = run(
        [trade("a", entry="1.08000"), trade("b", entry="1.08010")],
        [position(1, price="1.08011", symbol="EURUSD.m"), position(2, price="1.08001", symbol="EURUSD")],
    )
    assert pairs(result) == [("a", 2, "fuzzy"), ("b", 1, "fuzzy")]


# ---------------------------------------------------------------- divergences


def test_perfect_match_has_no_divergence() -> None:
    result = run(
        [trade(ticket=1, sl="1.07", tp="1.09")],
        [position(1, sl="1.07", tp="1.09")],
    )
    assert only_match(result).divergences == ()


@pytest.mark.parametrize(
    ("symbol", "terminal", "entry", "price", "pips"),
    [
        ("EURUSD", "EURUSD", "1.08000", "1.08050", None),  # exactly 5 pips: none
        ("EURUSD", "EURUSD", "1.08000", "1.08051", "5.1"),  # one point above
        ("EURUSD", "EURUSD", "1.08000", "1.07949", "5.1"),
        ("XAUUSD", "XAUUSD+", "2410.50", "2411.00", None),  # 50 points = 5.0 pips
        ("XAUUSD", "XAUUSD+", "2410.50", "2411.01", "5.1"),
        ("XAUUSD", "XAUUSD+", "2410.50", "2411.20", "7.0"),
        ("USDJPY", "USDJPY", "150.000", "150.050", None),  # digits 3: pip = 0.01
        ("USDJPY", "USDJPY", "150.000", "150.051", "5.1"),
        ("US500", "US500", "5000.00", "5000.05", None),  # digits 2, no pip: pip = point
        ("US500", "US500", "5000.00", "5000.06", "6.0"),
        ("EURUSD", "EURUSD", "1.08000", "1.09234", "123.4"),
    ],
)
def test_entry_slippage_threshold_and_reported_pips(
    symbol: str, terminal: str, entry: str, price: str, pips: str | None
) -> None:
    match = only_match(
        run([trade(ticket=1, symbol=symbol, entry=entry)], [position(1, symbol=terminal, price=price)])
    )
    expected = [] if pips is None else [Divergence("entry_slippage", {"pips": D(pips)})]
    assert list(match.divergences) == expected


def test_entry_slippage_is_reported_with_one_decimal() -> None:
    match = only_match(run([trade(ticket=1, entry="1.08000")], [position(1, price="1.08700")]))
    assert match.divergences[0].detail["pips"].as_tuple().exponent == -1
    assert match.to_dict()["divergences"] == [{"kind": "entry_slippage", "pips": 70.0}]


def test_entry_slippage_pips_round_half_even_to_one_decimal() -> None:
    # pip = 100 points here, so 125 points = 1.25 pips -> 1.2 (half-even); slippage limit lowered to 1 pip.
    symbols = {"X": SymbolSpec(name="X", digits=3, point=D("0.001"), pip=D("0.1"))}
    result = reconcile(
        symbols=symbols,
        bot_trades=[trade(ticket=1, symbol="X", entry="10.000")],
        positions=[position(1, symbol="X", price="10.125")],
        tolerances=Tolerances(slippage_pips=D(1)),
    )
    assert only_match(result).divergences == (Divergence("entry_slippage", {"pips": D("1.2")}),)


@pytest.mark.parametrize(
    ("volume", "diverges"),
    [("0.90", False), ("0.899", True), ("1.10", False), ("1.101", True), ("0.50", True)],
)
def test_volume_mismatch_threshold_is_strictly_above_ten_percent(volume: str, diverges: bool) -> None:
    match = only_match(run([trade(ticket=1, volume="1.00")], [position(1, volume=volume)]))
    expected = (
        [Divergence("volume_mismatch", {"expected": D("1.00"), "actual": D(volume)})] if diverges else []
    )
    assert list(match.divergences) == expected


@pytest.mark.parametrize(("field", "kind"), [("sl", "sl_mismatch"), ("tp", "tp_mismatch")])
@pytest.mark.parametrize(
    ("expected", "actual", "detail"),
    [
        ("1.07000", "1.07100", None),  # exactly 10 pips = 100 points
        ("1.07000", "1.07101", ("1.07000", "1.07101")),  # one point above
        ("1.07000", "1.06899", ("1.07000", "1.06899")),
        ("1.07000", "1.07000", None),
        (None, None, None),
        (None, "0", None),  # 0.0 and null both mean none
        ("0", None, None),
        ("0.0", "0.0", None),
        ("1.07000", None, ("1.07000", None)),
        ("1.07000", "0.0", ("1.07000", None)),
        (None, "1.07000", (None, "1.07000")),
        ("0", "1.07000", (None, "1.07000")),
    ],
)
def test_sl_and_tp_mismatch(
    field: str,
    kind: str,
    expected: str | None,
    actual: str | None,
    detail: tuple[str | None, str | None] | None,
) -> None:
    bot = trade(ticket=1, **{field: expected})  # type: ignore[arg-type]
    live = position(1, **{field: actual})  # type: ignore[arg-type]
    match = only_match(run([bot], [live]))
    if detail is None:
        assert match.divergences == ()
    else:
        want = {
            "expected": None if detail[0] is None else D(detail[0]),
            "actual": None if detail[1] is None else D(detail[1]),
        }
        assert match.divergences == (Divergence(kind, want),)


def test_sl_threshold_uses_the_positions_pip() -> None:
    # XAUUSD pip 0.1: 10 pips = 1.00; 1.01 is above.
    within = run(
        [trade(ticket=1, symbol="XAUUSD", entry="2400", sl="2390.00")],
        [position(1, symbol="XAUUSD+", price="2400", sl="2391.00")],
    )
    beyond = run(
        [trade(ticket=1, symbol="XAUUSD", entry="2400", sl="2390.00")],
        [position(1, symbol="XAUUSD+", price="2400", sl="2391.01")],
    )
    assert only_match(within).divergences == ()
    assert kinds(only_match(beyond)) == ["sl_mismatch"]


def test_divergence_thresholds_are_configurable() -> None:
    strict = Tolerances(slippage_pips=D(0), volume_mismatch_percent=D(0), sltp_pips=D(0))
    result = run(
        [trade(ticket=1, volume="1.00", sl="1.07000", tp="1.09000")],
        [position(1, volume="1.01", price="1.08001", sl="1.07001", tp="1.09001")],
        tolerances=strict,
    )
    assert kinds(only_match(result)) == ["entry_slippage", "volume_mismatch", "sl_mismatch", "tp_mismatch"]


def test_negative_tolerance_is_rejected() -> None:
    with pytest.raises(ReconciliationInputError):
        Tolerances(sltp_pips=D(-1))


def test_divergence_to_dict_uses_json_numbers_and_null() -> None:
    match = only_match(run([trade(ticket=1, volume="0.04", sl="1.082")], [position(1, volume="0.02")]))
    assert match.to_dict()["divergences"] == [
        {"kind": "volume_mismatch", "expected": 0.04, "actual": 0.02},
        {"kind": "sl_mismatch", "expected": 1.082, "actual": None},
    ]


# ---------------------------------------------------------------- missing positions and close reasons


@pytest.mark.parametrize(
    ("entry", "reason", "closed_by"),
    [
        (1, 4, "stop_loss"),
        (1, 5, "take_profit"),
        (1, 6, "stop_out"),
        (1, 0, "manual"),
        (1, 1, "manual"),
        (1, 2, "manual"),
        (1, 3, "expert"),
        (1, 7, "other"),
        (1, 8, "other"),
        (1, 9, "other"),
        (1, 42, "other"),
        (2, 4, "stop_loss"),  # INOUT counts as closing
        (2, 0, "manual"),
        (3, 3, "close_by"),  # OUT_BY wins whatever the reason
        (3, 4, "close_by"),
    ],
)
def test_close_reason_of_the_closing_deal(entry: int, reason: int, closed_by: str) -> None:
    deals = [
        deal(1, position_id=500, entry=0, reason=3, time=1),
        deal(2, position_id=500, entry=entry, reason=reason),
    ]
    assert close_reason(ticket=500, deals=deals) == closed_by
    result = run([trade(ticket=500)], [], deals)
    assert result.to_dict()["missing_positions"] == [{"bot_trade": "bt-1", "closed_by": closed_by}]


def test_close_reason_unknown_without_ticket() -> None:
    assert close_reason(ticket=None, deals=[deal(1, position_id=500, reason=4)]) == "unknown"
    result = run([trade(ticket=None, entry="1.5")], [], [deal(1, position_id=500, reason=4)])
    assert result.missing_positions[0].closed_by == "unknown"


def test_close_reason_unknown_without_a_closing_deal() -> None:
    assert close_reason(ticket=500, deals=[]) == "unknown"
    assert close_reason(ticket=500, deals=[deal(1, position_id=501, reason=4)]) == "unknown"


def test_close_reason_ignores_in_deals() -> None:
    deals = [
        deal(1, position_id=500, entry=1, reason=4, time=10),
        deal(2, position_id=500, entry=0, reason=3, time=20),
    ]
    assert close_reason(ticket=500, deals=deals) == "stop_loss"
    assert close_reason(ticket=500, deals=deals[1:]) == "unknown"


def test_close_reason_takes_the_last_deal_by_time() -> None:
    deals = [deal(1, position_id=500, reason=5, time=30), deal(2, position_id=500, reason=0, time=20)]
    assert close_reason(ticket=500, deals=deals) == "take_profit"
    assert run([trade(ticket=500)], [], deals).missing_positions[0].closed_by == "take_profit"


def test_close_reason_breaks_equal_times_by_deal_ticket() -> None:
    deals = [deal(9, position_id=500, reason=4, time=30), deal(3, position_id=500, reason=0, time=30)]
    assert close_reason(ticket=500, deals=deals) == "stop_loss"
    assert run([trade(ticket=500)], [], list(reversed(deals))).missing_positions[0].closed_by == "stop_loss"


def test_close_reason_accepts_any_iterable() -> None:
    assert close_reason(ticket=500, deals=iter([deal(1, position_id=500, reason=6)])) == "stop_out"


# ---------------------------------------------------------------- result ordering and shape


def test_result_lists_are_ordered_as_the_spec_says() -> None:
    result = run(
        [
            trade("t-fuzzy", entry="1.08000"),
            trade("t-missing-1", entry="1.50000"),
            trade("t-tag", tag="s1", entry="1.30000"),
            trade("t-ticket", ticket=50),
            trade("t-missing-2", entry="1.60000", ticket=77),
        ],
        [
            position(900, price="1.20000"),
            position(50, price="1.08000"),
            position(300, comment="s1", price="1.30000"),
            position(20, price="1.25000"),
            position(600, price="1.08001"),
        ],
        [deal(1, position_id=77, reason=4)],
    )
    assert pairs(result) == [("t-fuzzy", 600, "fuzzy"), ("t-tag", 300, "tag"), ("t-ticket", 50, "ticket")]
    assert [p.ticket for p in result.unmatched_positions] == [20, 900]
    assert result.to_dict()["missing_positions"] == [
        {"bot_trade": "t-missing-1", "closed_by": "unknown"},
        {"bot_trade": "t-missing-2", "closed_by": "stop_loss"},
    ]


def test_each_position_and_bot_trade_is_used_at_most_once() -> None:
    trades = [trade(f"t{i}", entry="1.08000", tag="s") for i in range(5)]
    positions = [position(i, price="1.08000", comment="s") for i in range(1, 4)]
    result = run(trades, positions)
    assert len({m.ticket for m in result.matches}) == len(result.matches) == 3
    assert len(result.missing_positions) == 2
    assert result.unmatched_positions == ()


def test_empty_inputs() -> None:
    assert run([], []).to_dict() == {
        "matches": [],
        "net_matches": [],
        "unmatched_positions": [],
        "missing_positions": [],
    }


def test_many_positions_all_pair_up() -> None:
    trades = [trade(f"t{i}", entry=str(D("1.00000") + D(i) * D("0.001"))) for i in range(200)]
    positions = [
        position(10_000 + i, price=str(D("1.00001") + D(i) * D("0.001")), time=i)
        for i in reversed(range(200))
    ]
    result = run(trades, positions)
    assert [(m.bot_trade_id, m.ticket) for m in result.matches] == [(f"t{i}", 10_000 + i) for i in range(200)]
    assert result.missing_positions == result.unmatched_positions == ()
