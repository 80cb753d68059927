"""Reconciliation matcher: pairs bot trades with live MT5 positions (shared/spec/reconciliation.md).

Pure: no Django, no I/O. The periodic live sync and the `reconcile_case` command both call `reconcile()`.

Where the two margin modes part: `reconcile()` checks the inputs once (rules.py) and then hands them to
hedging.py (one position per trade: ticket, tag and tolerance passes) or netting.py (one position per symbol: the
bot trades of a symbol form a group matched to it by net volume). Divergence checks, point distances and close
reasons are shared (rules.py); inputs, outputs and the symbol table are in model.py.

Decisions where the spec is silent:
- A distance in points is `|a - b| / point` rounded to an integer with ROUND_HALF_EVEN (what Python's
  `round()` does, the spec's formula read literally). Reported pips are `points * point / pip` quantized to
  one decimal, also ROUND_HALF_EVEN.
- Duplicate bot-trade ids or position tickets are rejected: the result refers to both by value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import localcontext

from reconciliation.matching.hedging import reconcile_hedging
from reconciliation.matching.model import (
    DEAL_ENTRY_IN,
    DEAL_ENTRY_INOUT,
    DEAL_ENTRY_OUT,
    DEAL_ENTRY_OUT_BY,
    MARGIN_MODES,
    POSITION_TYPE_BUY,
    POSITION_TYPE_SELL,
    BotTrade,
    Deal,
    Divergence,
    LivePosition,
    MarginMode,
    Match,
    Method,
    MissingPosition,
    NetMatch,
    ReconciliationInputError,
    ReconciliationResult,
    Side,
    SymbolSpec,
    SymbolTable,
    Tolerances,
    UnknownSymbolError,
    UnmatchedPosition,
    ZeroNetGroup,
)
from reconciliation.matching.netting import net_volume, reconcile_netting
from reconciliation.matching.rules import CONTEXT, close_reason, prepare_positions, trade_keys

__all__ = [
    "DEAL_ENTRY_IN",
    "DEAL_ENTRY_INOUT",
    "DEAL_ENTRY_OUT",
    "DEAL_ENTRY_OUT_BY",
    "MARGIN_MODES",
    "POSITION_TYPE_BUY",
    "POSITION_TYPE_SELL",
    "BotTrade",
    "Deal",
    "Divergence",
    "LivePosition",
    "MarginMode",
    "Match",
    "Method",
    "MissingPosition",
    "NetMatch",
    "ReconciliationInputError",
    "ReconciliationResult",
    "Side",
    "SymbolSpec",
    "SymbolTable",
    "Tolerances",
    "UnknownSymbolError",
    "UnmatchedPosition",
    "ZeroNetGroup",
    "close_reason",
    "net_volume",
    "reconcile",
]

DEFAULT_TOLERANCES = Tolerances()  # frozen, so one shared default is safe


def reconcile(
    *,
    symbols: Mapping[str, SymbolSpec],
    bot_trades: Sequence[BotTrade],
    positions: Sequence[LivePosition],
    deals: Sequence[Deal] = (),
    tolerances: Tolerances = DEFAULT_TOLERANCES,
    margin_mode: MarginMode = "hedging",
) -> ReconciliationResult:
    """Match the open bot trades of one account with its live positions and explain the rest."""
    if margin_mode not in MARGIN_MODES:
        raise ReconciliationInputError(
            f"margin mode must be one of {', '.join(MARGIN_MODES)} (got {margin_mode!r})"
        )
    table = SymbolTable.of(symbols)
    with localcontext(CONTEXT):
        prepared = prepare_positions(positions=positions, table=table, tolerances=tolerances)
        keys = trade_keys(trades=bot_trades, table=table)
        by_mode = reconcile_netting if margin_mode == "netting" else reconcile_hedging
        return by_mode(
            table=table, trades=bot_trades, keys=keys, prepared=prepared, deals=deals, tolerances=tolerances
        )
