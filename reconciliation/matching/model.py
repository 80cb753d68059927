"""The matcher's inputs, outputs and symbol table (shared/spec/reconciliation.md). Pure: no Django, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

Side = Literal["buy", "sell"]
Method = Literal["ticket", "tag", "fuzzy"]
MarginMode = Literal["hedging", "netting"]
MARGIN_MODES: tuple[MarginMode, ...] = ("hedging", "netting")

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1
DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

SIDE_OF_TYPE: Mapping[int, Side] = {POSITION_TYPE_BUY: "buy", POSITION_TYPE_SELL: "sell"}
TYPE_OF_SIDE: Mapping[str, int] = {"buy": POSITION_TYPE_BUY, "sell": POSITION_TYPE_SELL}


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
class NetMatch:
    """Netting accounts: the open bot trades of one canonical symbol (input order) and the position they net to."""

    bot_trade_ids: tuple[str, ...]
    ticket: int
    symbol: str  # canonical name
    net_volume: Decimal  # buys minus sells: negative for a net sell
    divergences: tuple[Divergence, ...] = ()
    method: Literal["net"] = "net"

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot_trades": list(self.bot_trade_ids),
            "ticket": self.ticket,
            "method": self.method,
            "divergences": [divergence.to_dict() for divergence in self.divergences],
        }


@dataclass(frozen=True, slots=True)
class ZeroNetGroup:
    """Netting accounts: bot trades of one canonical symbol whose volumes cancel out; they expect no position."""

    bot_trade_ids: tuple[str, ...]
    symbol: str  # canonical name


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
    net_matches: tuple[NetMatch, ...] = ()
    # Not part of the case output (the spec lists its keys); the live sync and the tests use it.
    zero_net_groups: tuple[ZeroNetGroup, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": [match.to_dict() for match in self.matches],
            "net_matches": [net.to_dict() for net in self.net_matches],
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
