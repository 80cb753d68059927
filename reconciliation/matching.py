"""Reconciliation matcher: pairs bot trades with live MT5 positions (shared/spec/reconciliation.md).

Pure: no Django, no I/O. The periodic live sync and the `reconcile_case` command both call `reconcile()`.

Decisions where the spec is silent:
- A distance in points is `|a - b| / point` rounded to an integer with ROUND_HALF_EVEN (what Python's
  `round()` does, the spec's formula read literally). Reported pips are `points * point / pip` quantized to
  one decimal, also ROUND_HALF_EVEN.
- Every distance of a pair (entry, SL, TP) uses the live position's symbol spec: the terminal symbol is
  what was actually traded, and several terminal symbols may share one canonical name.
- A bot trade whose ticket is not open (or already claimed) still takes part in the tag and tolerance
  passes, as the spec reads ("among what is left").
- Duplicate bot-trade ids or position tickets are rejected: the result refers to both by value.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from functools import lru_cache
from typing import Any, Literal

Side = Literal["buy", "sell"]
Method = Literal["ticket", "tag", "fuzzy"]

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1
DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

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
_SIDE_OF_TYPE: Mapping[int, Side] = {POSITION_TYPE_BUY: "buy", POSITION_TYPE_SELL: "sell"}
_TYPE_OF_SIDE: Mapping[str, int] = {"buy": POSITION_TYPE_BUY, "sell": POSITION_TYPE_SELL}

# Enough digits that price and volume arithmetic stays exact whatever the caller's global context says.
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_TENTH = Decimal("0.1")


class ReconciliationInputError(ValueError):
    """The inputs cannot be reconciled (duplicate ids, impossible values)."""


class UnknownSymbolError(ReconciliationInputError):
    """A position or bot trade names a symbol that the symbol table does not know."""


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    name: str
    digits: int
    point: Decimal
    canonical: str = ""  # empty means the name upper-cased
    pip: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.canonical:
            object.__setattr__(self, "canonical", self.name.upper())
        if self.point <= 0:
            raise ReconciliationInputError(f"symbol {self.name}: point must be positive")
        if self.pip is not None and self.pip <= 0:
            raise ReconciliationInputError(f"symbol {self.name}: pip must be positive")

    @property
    def pip_size(self) -> Decimal:
        if self.pip is not None:
            return self.pip
        if self.digits in (3, 5):
            return self.point * 10
        return self.point


@dataclass(frozen=True, slots=True)
class Tolerances:
    match_volume_percent: Decimal = Decimal(5)
    match_entry_pips: Decimal = Decimal(2)
    slippage_pips: Decimal = Decimal(5)
    volume_mismatch_percent: Decimal = Decimal(10)
    sltp_pips: Decimal = Decimal(10)

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ReconciliationInputError(f"tolerance {item.name} must not be negative")


@dataclass(frozen=True, slots=True)
class BotTrade:
    id: str
    symbol: str  # canonical name
    side: Side
    volume: Decimal
    entry_price: Decimal
    sl: Decimal | None = None
    tp: Decimal | None = None
    ticket: int | None = None
    magic: int | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class LivePosition:
    ticket: int
    time: int
    type: int
    magic: int
    volume: Decimal
    price_open: Decimal
    sl: Decimal | None  # 0 or None: no SL
    tp: Decimal | None
    symbol: str  # terminal name
    comment: str


@dataclass(frozen=True, slots=True)
class Deal:
    ticket: int
    order: int
    time: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: Decimal
    price: Decimal
    symbol: str
    comment: str


# ---------------------------------------------------------------- outputs


def _json_value(value: object) -> object:
    # JSON boundary only: a Decimal of a price or volume round-trips exactly through float's shortest repr.
    return float(value) if isinstance(value, Decimal) else value


@dataclass(frozen=True, slots=True)
class Divergence:
    kind: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{key: _json_value(value) for key, value in self.detail.items()}}


@dataclass(frozen=True, slots=True)
class Match:
    bot_trade_id: str
    ticket: int
    method: Method
    divergences: tuple[Divergence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot_trade": self.bot_trade_id,
            "ticket": self.ticket,
            "method": self.method,
            "divergences": [divergence.to_dict() for divergence in self.divergences],
        }


@dataclass(frozen=True, slots=True)
class UnmatchedPosition:
    ticket: int
    symbol: str  # canonical name

    def to_dict(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "symbol": self.symbol}


@dataclass(frozen=True, slots=True)
class MissingPosition:
    bot_trade_id: str
    closed_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"bot_trade": self.bot_trade_id, "closed_by": self.closed_by}


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    matches: tuple[Match, ...]
    unmatched_positions: tuple[UnmatchedPosition, ...]
    missing_positions: tuple[MissingPosition, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": [match.to_dict() for match in self.matches],
            "unmatched_positions": [position.to_dict() for position in self.unmatched_positions],
            "missing_positions": [missing.to_dict() for missing in self.missing_positions],
        }


# ---------------------------------------------------------------- symbol table


class SymbolTable(Mapping[str, SymbolSpec]):
    """Terminal name -> spec, plus the canonical-name index. Build once and reuse across reconciles."""

    __slots__ = ("_by_name", "_canonical")

    def __init__(self, specs: Mapping[str, SymbolSpec]) -> None:
        self._by_name: dict[str, SymbolSpec] = dict(specs)
        self._canonical: dict[str, str] = {}
        for spec in self._by_name.values():
            self._canonical.setdefault(spec.canonical.upper(), spec.canonical)

    @classmethod
    def of(cls, symbols: Mapping[str, SymbolSpec]) -> SymbolTable:
        return symbols if isinstance(symbols, SymbolTable) else cls(symbols)

    def __getitem__(self, name: str) -> SymbolSpec:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def spec_of(self, name: str) -> SymbolSpec:
        """Spec of a terminal symbol name (exact)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSymbolError(f"unknown terminal symbol {name!r}") from None

    def canonical_key(self, canonical: str) -> str:
        """Case-insensitive key of a canonical name that some table entry carries."""
        key = canonical.upper()
        if key not in self._canonical:
            raise UnknownSymbolError(f"unknown canonical symbol {canonical!r}")
        return key

    def canonical_name(self, key: str) -> str:
        return self._canonical[key]


# ---------------------------------------------------------------- distances


@dataclass(frozen=True, slots=True)
class _Scale:
    """Per-symbol thresholds in points (N pips = N * pip / point); exact Decimals, not necessarily whole."""

    point: Decimal
    pip: Decimal
    match_entry: Decimal
    slippage: Decimal
    sltp: Decimal


@lru_cache(maxsize=4096)
def _scale(spec: SymbolSpec, tolerances: Tolerances) -> _Scale:
    with localcontext(_CONTEXT):
        pip = spec.pip_size
        per_pip = pip / spec.point
        return _Scale(
            point=spec.point,
            pip=pip,
            match_entry=tolerances.match_entry_pips * per_pip,
            slippage=tolerances.slippage_pips * per_pip,
            sltp=tolerances.sltp_pips * per_pip,
        )


def _points(a: Decimal, b: Decimal, point: Decimal) -> int:
    return int((abs(a - b) / point).to_integral_value(rounding=ROUND_HALF_EVEN))


def _has_level(level: Decimal | None) -> bool:
    return level is not None and level != 0


def _within_percent(actual: Decimal, expected: Decimal, percent: Decimal) -> bool:
    # |actual - expected| <= percent % of expected, without dividing.
    return abs(actual - expected) * _HUNDRED <= expected * percent


class _Pos:
    """A live position with what the passes need, computed once."""

    __slots__ = ("key", "position", "scale", "spec", "used")

    def __init__(self, position: LivePosition, spec: SymbolSpec, scale: _Scale) -> None:
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


def _last_closing_deals(deals: Iterable[Deal]) -> dict[int, Deal]:
    last: dict[int, Deal] = {}
    for deal in deals:
        if deal.entry in _CLOSING_ENTRIES and _later(deal, last.get(deal.position_id)):
            last[deal.position_id] = deal
    return last


def _missing_reason(*, ticket: int | None, last_deals: Mapping[int, Deal]) -> str:
    return "unknown" if ticket is None else _closed_by(last_deals.get(ticket))


# ---------------------------------------------------------------- divergences


def _level_divergence(
    *, kind: str, expected: Decimal | None, actual: Decimal | None, limit: Decimal, point: Decimal
) -> Divergence | None:
    expected = expected if _has_level(expected) else None
    actual = actual if _has_level(actual) else None
    if expected is None and actual is None:
        return None
    if expected is not None and actual is not None and _points(expected, actual, point) <= limit:
        return None
    return Divergence(kind, {"expected": expected, "actual": actual})


def _divergences(
    *, trade: BotTrade, trade_key: str, pos: _Pos, table: SymbolTable, tolerances: Tolerances
) -> tuple[Divergence, ...]:
    position, scale = pos.position, pos.scale
    found: list[Divergence] = []
    if trade_key != pos.key:
        found.append(
            Divergence(
                "symbol_mismatch", {"expected": table.canonical_name(trade_key), "actual": pos.spec.canonical}
            )
        )
    actual_side = _SIDE_OF_TYPE[position.type]
    if trade.side != actual_side:
        found.append(Divergence("side_mismatch", {"expected": trade.side, "actual": actual_side}))
    entry_points = _points(trade.entry_price, position.price_open, scale.point)
    if entry_points > scale.slippage:
        pips = (entry_points * scale.point / scale.pip).quantize(_TENTH, rounding=ROUND_HALF_EVEN)
        found.append(Divergence("entry_slippage", {"pips": pips}))
    if not _within_percent(position.volume, trade.volume, tolerances.volume_mismatch_percent):
        found.append(Divergence("volume_mismatch", {"expected": trade.volume, "actual": position.volume}))
    for kind, expected, actual in (
        ("sl_mismatch", trade.sl, position.sl),
        ("tp_mismatch", trade.tp, position.tp),
    ):
        divergence = _level_divergence(
            kind=kind, expected=expected, actual=actual, limit=scale.sltp, point=scale.point
        )
        if divergence is not None:
            found.append(divergence)
    return tuple(found)


# ---------------------------------------------------------------- passes


def _tag_pass(
    *, trades: Sequence[BotTrade], keys: Sequence[str], pending: list[int], positions: Sequence[_Pos]
) -> dict[int, tuple[_Pos, Method]]:
    by_comment: dict[str, list[_Pos]] = {}
    for pos in positions:
        if not pos.used and pos.position.comment:
            by_comment.setdefault(pos.position.comment, []).append(pos)
    for candidates in by_comment.values():
        candidates.sort(key=lambda pos: pos.position.ticket)
    found: dict[int, tuple[_Pos, Method]] = {}
    for index in pending:
        trade = trades[index]
        if not trade.tag:
            continue
        for pos in by_comment.get(trade.tag, ()):
            if pos.used or pos.key != keys[index]:
                continue
            if trade.magic is not None and pos.position.magic != trade.magic:
                continue
            pos.used = True
            found[index] = (pos, "tag")
            break
    return found


def _tolerance_pass(
    *,
    trades: Sequence[BotTrade],
    keys: Sequence[str],
    pending: list[int],
    positions: Sequence[_Pos],
    tolerances: Tolerances,
) -> dict[int, tuple[_Pos, Method]]:
    # Positions grouped by (canonical, type, terminal symbol) and sorted by price, so each bot trade only
    # looks at the price window that can possibly be within the entry limit (no full cross product).
    groups: dict[tuple[str, int], dict[str, tuple[list[Decimal], list[_Pos]]]] = {}
    for pos in sorted((pos for pos in positions if not pos.used), key=lambda pos: pos.position.price_open):
        by_symbol = groups.setdefault((pos.key, pos.position.type), {})
        prices, members = by_symbol.setdefault(pos.position.symbol, ([], []))
        prices.append(pos.position.price_open)
        members.append(pos)

    by_ticket: dict[int, _Pos] = {}
    candidates: list[tuple[int, Decimal, int, int, int]] = []
    for index in pending:
        trade = trades[index]
        group = groups.get((keys[index], _TYPE_OF_SIDE[trade.side]))
        if not group:
            continue
        volume_limit = trade.volume * tolerances.match_volume_percent  # compared with 100 x the difference
        for prices, members in group.values():
            scale = members[0].scale
            margin = (scale.match_entry + _ONE) * scale.point  # superset of the rounded-points window
            low = bisect.bisect_left(prices, trade.entry_price - margin)
            high = bisect.bisect_right(prices, trade.entry_price + margin)
            for pos in members[low:high]:
                position = pos.position
                volume_diff = abs(position.volume - trade.volume)
                if volume_diff * _HUNDRED > volume_limit:
                    continue
                entry_points = _points(trade.entry_price, position.price_open, scale.point)
                if entry_points > scale.match_entry:
                    continue
                by_ticket[position.ticket] = pos
                candidates.append((entry_points, volume_diff, position.time, position.ticket, index))

    # Tie-breaks per spec: entry distance, volume difference, position time, ticket, bot-trade order.
    candidates.sort()
    found: dict[int, tuple[_Pos, Method]] = {}
    for *_, ticket, index in candidates:
        pos = by_ticket[ticket]
        if pos.used or index in found:
            continue
        pos.used = True
        found[index] = (pos, "fuzzy")
    return found


def _prepare_positions(
    *, positions: Sequence[LivePosition], table: SymbolTable, tolerances: Tolerances
) -> list[_Pos]:
    prepared: list[_Pos] = []
    seen: set[int] = set()
    for position in positions:
        if position.ticket in seen:
            raise ReconciliationInputError(f"duplicate position ticket {position.ticket}")
        seen.add(position.ticket)
        if position.type not in _SIDE_OF_TYPE:
            raise ReconciliationInputError(f"position {position.ticket}: type must be 0 (buy) or 1 (sell)")
        spec = table.spec_of(position.symbol)
        prepared.append(_Pos(position, spec, _scale(spec, tolerances)))
    return prepared


def _trade_keys(*, trades: Sequence[BotTrade], table: SymbolTable) -> list[str]:
    keys: list[str] = []
    seen: set[str] = set()
    for trade in trades:
        if trade.id in seen:
            raise ReconciliationInputError(f"duplicate bot trade id {trade.id!r}")
        seen.add(trade.id)
        if trade.side not in _TYPE_OF_SIDE:
            raise ReconciliationInputError(f"bot trade {trade.id!r}: side must be buy or sell")
        keys.append(table.canonical_key(trade.symbol))
    return keys


def reconcile(
    *,
    symbols: Mapping[str, SymbolSpec],
    bot_trades: Sequence[BotTrade],
    positions: Sequence[LivePosition],
    deals: Sequence[Deal] = (),
    tolerances: Tolerances = Tolerances(),  # frozen, so sharing the default is safe
) -> ReconciliationResult:
    """Match bot trades to live positions in three passes (ticket, tag, tolerance) and explain the rest."""
    table = SymbolTable.of(symbols)
    with localcontext(_CONTEXT):
        prepared = _prepare_positions(positions=positions, table=table, tolerances=tolerances)
        keys = _trade_keys(trades=bot_trades, table=table)

        matched: dict[int, tuple[_Pos, Method]] = {}
        by_ticket = {pos.position.ticket: pos for pos in prepared}
        for index, trade in enumerate(bot_trades):
            pos = by_ticket.get(trade.ticket) if trade.ticket is not None else None
            if pos is not None and not pos.used:
                pos.used = True
                matched[index] = (pos, "ticket")

        pending = [index for index in range(len(bot_trades)) if index not in matched]
        if pending:
            matched.update(_tag_pass(trades=bot_trades, keys=keys, pending=pending, positions=prepared))
            pending = [index for index in pending if index not in matched]
        if pending:
            matched.update(
                _tolerance_pass(
                    trades=bot_trades, keys=keys, pending=pending, positions=prepared, tolerances=tolerances
                )
            )
            pending = [index for index in pending if index not in matched]

        matches = tuple(
            Match(
                bot_trade_id=bot_trades[index].id,
                ticket=pos.position.ticket,
                method=method,
                divergences=_divergences(
                    trade=bot_trades[index],
                    trade_key=keys[index],
                    pos=pos,
                    table=table,
                    tolerances=tolerances,
                ),
            )
            for index, (pos, method) in sorted(matched.items())
        )
        last_deals = _last_closing_deals(deals) if pending else {}
        missing = tuple(
            MissingPosition(
                bot_trade_id=bot_trades[index].id,
                closed_by=_missing_reason(ticket=bot_trades[index].ticket, last_deals=last_deals),
            )
            for index in pending
        )
        unmatched = tuple(
            UnmatchedPosition(ticket=pos.position.ticket, symbol=pos.spec.canonical)
            for pos in sorted((pos for pos in prepared if not pos.used), key=lambda pos: pos.position.ticket)
        )
    return ReconciliationResult(matches=matches, unmatched_positions=unmatched, missing_positions=missing)
