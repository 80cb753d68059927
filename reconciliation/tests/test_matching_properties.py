"""Properties of the matcher on both margin modes, on generated accounts (hypothesis).

The generated accounts are small and dense on purpose: few symbols, prices a few points apart, shared tags and
tickets, so that the ticket, tag and tolerance passes and the netting groups all compete for the same positions.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.matching import (
    BotTrade,
    Deal,
    LivePosition,
    MarginMode,
    ReconciliationResult,
    SymbolSpec,
    reconcile,
)

D = Decimal
SYMBOLS = {
    "EURUSD": SymbolSpec(name="EURUSD", digits=5, point=D("0.00001")),
    "EURUSD.m": SymbolSpec(name="EURUSD.m", digits=5, point=D("0.00001"), canonical="EURUSD"),
    "GBPUSD": SymbolSpec(name="GBPUSD", digits=5, point=D("0.00001")),
    "XAUUSD+": SymbolSpec(name="XAUUSD+", digits=2, point=D("0.01"), canonical="XAUUSD", pip=D("0.1")),
}
# canonical -> (terminal names, base price)
MARKETS = {
    "EURUSD": (("EURUSD", "EURUSD.m"), D("1.08000")),
    "GBPUSD": (("GBPUSD",), D("1.27000")),
    "XAUUSD": (("XAUUSD+",), D("2400.00")),
}
TAGS = ["", "s1", "s2", "s3"]
TICKETS = list(range(100, 116))
modes = st.sampled_from(["hedging", "netting"])


def _price(canonical: str, offset: int) -> Decimal:
    terminal, base = MARKETS[canonical]
    return base + offset * SYMBOLS[terminal[0]].point


volumes = st.integers(min_value=1, max_value=12).map(
    lambda lots: D(lots) / 10
)  # 0.1 .. 1.2, so nets can cancel
offsets = st.integers(min_value=-40, max_value=40)  # within a few pips: tolerance matches happen
levels = st.one_of(st.none(), st.just(0), st.integers(min_value=-300, max_value=300))


@st.composite
def positions(draw: st.DrawFn) -> list[LivePosition]:
    tickets = draw(st.lists(st.sampled_from(TICKETS), unique=True, max_size=8))
    found = []
    for ticket in tickets:
        canonical = draw(st.sampled_from(sorted(MARKETS)))
        terminal = draw(st.sampled_from(MARKETS[canonical][0]))
        sl = draw(levels)
        found.append(
            LivePosition(
                ticket=ticket,
                time=draw(st.integers(min_value=0, max_value=3)),
                type=draw(st.sampled_from([0, 1])),
                magic=draw(st.sampled_from([0, 7])),
                volume=draw(volumes),
                price_open=_price(canonical, draw(offsets)),
                sl=None if sl is None else (D(0) if sl == 0 else _price(canonical, sl)),
                tp=None,
                symbol=terminal,
                comment=draw(st.sampled_from(TAGS)),
            )
        )
    return found


@st.composite
def bot_trades(draw: st.DrawFn) -> list[BotTrade]:
    count = draw(st.integers(min_value=0, max_value=8))
    found = []
    for index in range(count):
        canonical = draw(st.sampled_from(sorted(MARKETS)))
        sl = draw(levels)
        found.append(
            BotTrade(
                id=f"bt-{index}",
                symbol=draw(st.sampled_from([canonical, canonical.lower()])),
                side=draw(st.sampled_from(["buy", "sell"])),
                volume=draw(volumes),
                entry_price=_price(canonical, draw(offsets)),
                sl=None if sl is None else (D(0) if sl == 0 else _price(canonical, sl)),
                tp=None,
                # Tickets from the same pool as the positions' (some open, some not) or none.
                ticket=draw(st.one_of(st.none(), st.sampled_from([*TICKETS, 900, 901]))),
                magic=draw(st.sampled_from([None, 0, 7])),
                tag=draw(st.sampled_from([None, *TAGS])),
            )
        )
    return found


@st.composite
def deals(draw: st.DrawFn) -> list[Deal]:
    ids = draw(st.lists(st.sampled_from([*TICKETS, 900, 901]), max_size=4))
    return [
        Deal(
            ticket=5000 + index,
            order=6000 + index,
            time=draw(st.integers(min_value=0, max_value=3)),
            type=1,
            entry=draw(st.sampled_from([0, 1, 2, 3])),
            magic=0,
            position_id=position_id,
            reason=draw(st.integers(min_value=0, max_value=7)),
            volume=D("0.1"),
            price=D(1),
            symbol="EURUSD",
            comment="",
        )
        for index, position_id in enumerate(ids)
    ]


def run(
    mode: MarginMode, trades: list[BotTrade], live: list[LivePosition], history: list[Deal] = ()
) -> ReconciliationResult:
    return reconcile(symbols=SYMBOLS, bot_trades=trades, positions=live, deals=history, margin_mode=mode)


def _full(result: ReconciliationResult) -> object:
    return (result.to_dict(), [(g.bot_trade_ids, g.symbol) for g in result.zero_net_groups])


@settings(max_examples=200, deadline=None)
@given(mode=modes, trades=bot_trades(), live=positions(), history=deals())
def test_every_position_and_bot_trade_ends_up_in_exactly_one_place(
    mode: MarginMode, trades: list[BotTrade], live: list[LivePosition], history: list[Deal]
) -> None:
    result = run(mode, trades, live, history)
    position_places = Counter(
        [m.ticket for m in result.matches]
        + [m.ticket for m in result.net_matches]
        + [u.ticket for u in result.unmatched_positions]
    )
    assert position_places == Counter(p.ticket for p in live)
    trade_places = Counter(
        [m.bot_trade_id for m in result.matches]
        + [bt for m in result.net_matches for bt in m.bot_trade_ids]
        + [m.bot_trade_id for m in result.missing_positions]
        + [bt for g in result.zero_net_groups for bt in g.bot_trade_ids]
    )
    assert trade_places == Counter(t.id for t in trades)
    if mode == "hedging":
        assert (result.net_matches, result.zero_net_groups) == ((), ())
    else:
        assert result.matches == ()


@settings(max_examples=200, deadline=None)
@given(mode=modes, trades=bot_trades(), live=positions(), history=deals(), data=st.data())
def test_the_result_does_not_depend_on_the_order_the_terminal_lists_positions(
    mode: MarginMode,
    trades: list[BotTrade],
    live: list[LivePosition],
    history: list[Deal],
    data: st.DataObject,
) -> None:
    shuffled = data.draw(st.permutations(live))
    assert _full(run(mode, trades, shuffled, history)) == _full(run(mode, trades, live, history))


@settings(max_examples=200, deadline=None)
@given(mode=modes, trades=bot_trades(), live=positions())
def test_reconciling_the_matched_pairs_again_gives_the_same_matches(
    mode: MarginMode, trades: list[BotTrade], live: list[LivePosition]
) -> None:
    first = run(mode, trades, live)
    matched_ids = {m.bot_trade_id for m in first.matches} | {
        bt for m in first.net_matches for bt in m.bot_trade_ids
    }
    matched_tickets = {m.ticket for m in first.matches} | {m.ticket for m in first.net_matches}
    again = run(
        mode,
        [t for t in trades if t.id in matched_ids],
        [p for p in live if p.ticket in matched_tickets],
    )
    assert (again.matches, again.net_matches) == (first.matches, first.net_matches)
    assert (again.unmatched_positions, again.missing_positions) == ((), ())


@settings(max_examples=200, deadline=None)
@given(trades=bot_trades(), live=positions(), history=deals())
def test_no_ticketed_bot_trade_is_ever_matched_by_tag_or_tolerance(
    trades: list[BotTrade], live: list[LivePosition], history: list[Deal]
) -> None:
    result = run("hedging", trades, live, history)
    by_id = {t.id: t for t in trades}
    open_tickets = {p.ticket for p in live}
    for match in result.matches:
        trade = by_id[match.bot_trade_id]
        if trade.ticket is not None:
            assert (match.method, match.ticket) == ("ticket", trade.ticket)
        else:
            assert match.method in ("tag", "fuzzy")
    # And a ticketed trade whose ticket is not open is missing, never re-paired.
    for trade in trades:
        if trade.ticket is not None and trade.ticket not in open_tickets:
            assert trade.id in {m.bot_trade_id for m in result.missing_positions}
