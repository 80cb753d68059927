"""What both margin modes share: distances in points, divergences inside a match, close reasons, input checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from functools import lru_cache

from reconciliation.matching.model import (
    DEAL_ENTRY_INOUT,
    DEAL_ENTRY_OUT,
    DEAL_ENTRY_OUT_BY,
    SIDE_OF_TYPE,
    TYPE_OF_SIDE,
    BotTrade,
    Deal,
    Divergence,
    LivePosition,
    ReconciliationInputError,
    Side,
    SymbolSpec,
    SymbolTable,
    Tolerances,
)

_CLOSING_ENTRIES = frozenset({DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY})
# DEAL_REASON_* -> closed_by; anything else is "other".
_CLOSE_REASONS: Mapping[int, str] = {
    0: "manual",  # CLIENT
    1: "manual",  # MOBILE
    2: "manual",  # WEB
    3: "expert",
    4: "stop_loss",
    5: "take_profit",
    6: "stop_out",
}

# Enough digits that price and volume arithmetic stays exact whatever the caller's global context says.
CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
HUNDRED = Decimal(100)
ONE = Decimal(1)
_TENTH = Decimal("0.1")


# ---------------------------------------------------------------- distances


@dataclass(frozen=True, slots=True)
class Scale:
    """Per-symbol thresholds in points (N pips = N * pip / point); exact Decimals, not necessarily whole."""

    point: Decimal
    pip: Decimal
    match_entry: Decimal
    slippage: Decimal
    sltp: Decimal


@lru_cache(maxsize=4096)
def _scale(spec: SymbolSpec, tolerances: Tolerances) -> Scale:
    with localcontext(CONTEXT):
        pip = spec.pip_size
        per_pip = pip / spec.point
        return Scale(
            point=spec.point,
            pip=pip,
            match_entry=tolerances.match_entry_pips * per_pip,
            slippage=tolerances.slippage_pips * per_pip,
            sltp=tolerances.sltp_pips * per_pip,
        )


def points(a: Decimal, b: Decimal, point: Decimal) -> int:
    return int((abs(a - b) / point).to_integral_value(rounding=ROUND_HALF_EVEN))


def has_level(level: Decimal | None) -> bool:
    return level is not None and level != 0


def within_percent(actual: Decimal, expected: Decimal, percent: Decimal) -> bool:
    # |actual - expected| <= percent % of expected, without dividing.
    return abs(actual - expected) * HUNDRED <= expected * percent


class Pos:
    """A live position with what the passes need, computed once."""

    __slots__ = ("key", "position", "scale", "spec", "used")

    def __init__(self, position: LivePosition, spec: SymbolSpec, scale: Scale) -> None:
        self.position = position
        self.spec = spec
        self.scale = scale
        self.key = spec.canonical.upper()
        self.used = False


# ---------------------------------------------------------------- close reasons


def _later(deal: Deal, other: Deal | None) -> bool:
    return other is None or (deal.time, deal.ticket) > (other.time, other.ticket)


def _closed_by(deal: Deal | None) -> str:
    if deal is None:
        return "unknown"
    if deal.entry == DEAL_ENTRY_OUT_BY:
        return "close_by"
    return _CLOSE_REASONS.get(deal.reason, "other")


def close_reason(*, ticket: int | None, deals: Iterable[Deal]) -> str:
    """Why position `ticket` closed, from its last closing deal by (time, ticket); "unknown" when none."""
    if ticket is None:
        return "unknown"
    last: Deal | None = None
    for deal in deals:
        if deal.position_id == ticket and deal.entry in _CLOSING_ENTRIES and _later(deal, last):
            last = deal
    return _closed_by(last)


def last_closing_deals(deals: Iterable[Deal]) -> dict[int, Deal]:
    last: dict[int, Deal] = {}
    for deal in deals:
        if deal.entry in _CLOSING_ENTRIES and _later(deal, last.get(deal.position_id)):
            last[deal.position_id] = deal
    return last


def missing_reason(*, ticket: int | None, last_deals: Mapping[int, Deal]) -> str:
    return "unknown" if ticket is None else _closed_by(last_deals.get(ticket))


# ---------------------------------------------------------------- divergences


def side_divergence(*, expected: Side, position: LivePosition) -> Divergence | None:
    actual = SIDE_OF_TYPE[position.type]
    return (
        None if expected == actual else Divergence("side_mismatch", {"expected": expected, "actual": actual})
    )


def entry_divergence(*, expected: Decimal, position: LivePosition, scale: Scale) -> Divergence | None:
    entry_points = points(expected, position.price_open, scale.point)
    if entry_points <= scale.slippage:
        return None
    pips = (entry_points * scale.point / scale.pip).quantize(_TENTH, rounding=ROUND_HALF_EVEN)
    return Divergence("entry_slippage", {"pips": pips})


def volume_divergence(
    *, expected: Decimal, position: LivePosition, tolerances: Tolerances
) -> Divergence | None:
    if within_percent(position.volume, expected, tolerances.volume_mismatch_percent):
        return None
    return Divergence("volume_mismatch", {"expected": expected, "actual": position.volume})


def level_divergence(
    *, kind: str, expected: Decimal | None, actual: Decimal | None, scale: Scale
) -> Divergence | None:
    expected = expected if has_level(expected) else None
    actual = actual if has_level(actual) else None
    if expected is None and actual is None:
        return None
    if expected is not None and actual is not None and points(expected, actual, scale.point) <= scale.sltp:
        return None
    return Divergence(kind, {"expected": expected, "actual": actual})


# ---------------------------------------------------------------- inputs


def prepare_positions(
    *, positions: Sequence[LivePosition], table: SymbolTable, tolerances: Tolerances
) -> list[Pos]:
    prepared: list[Pos] = []
    seen: set[int] = set()
    for position in positions:
        if position.ticket in seen:
            raise ReconciliationInputError(f"duplicate position ticket {position.ticket}")
        seen.add(position.ticket)
        if position.type not in SIDE_OF_TYPE:
            raise ReconciliationInputError(f"position {position.ticket}: type must be 0 (buy) or 1 (sell)")
        spec = table.spec_of(position.symbol)
        prepared.append(Pos(position, spec, _scale(spec, tolerances)))
    return prepared


def trade_keys(*, trades: Sequence[BotTrade], table: SymbolTable) -> list[str]:
    """The canonical key of each bot trade, in input order, after checking ids, sides and volumes."""
    keys: list[str] = []
    seen: set[str] = set()
    for trade in trades:
        if trade.id in seen:
            raise ReconciliationInputError(f"duplicate bot trade id {trade.id!r}")
        seen.add(trade.id)
        if trade.side not in TYPE_OF_SIDE:
            raise ReconciliationInputError(f"bot trade {trade.id!r}: side must be buy or sell")
        if trade.volume <= 0:
            raise ReconciliationInputError(f"bot trade {trade.id!r}: volume must be positive")
        keys.append(table.canonical_key(trade.symbol))
    return keys


def unmatched_of(prepared: Sequence[Pos]) -> list[Pos]:
    return sorted((pos for pos in prepared if not pos.used), key=lambda pos: pos.position.ticket)
