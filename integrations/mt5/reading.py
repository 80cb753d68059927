"""One account reading: everything a sync learns from the terminal, taken at once before any database work.

The account-sync pipeline (`pipeline.services.account_sync`) takes it once and hands the same value to the snapshot,
to reconciliation and to the guards, so no step reads the terminal again while holding a database lock.
Plain gateway types only: every domain app may read it, none needs to know who took it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from integrations.mt5.types import AccountState, Bar, Deal, Position, SymbolSpec, TerminalState, Tick


@dataclass(frozen=True, slots=True)
class SymbolMarket:
    """What the market guard needs of one symbol held: its spec, the newest tick and the newest closed bars.
    `error` is set (and the rest may be missing) when the terminal could not describe the symbol."""

    symbol: str
    spec: SymbolSpec | None = None
    tick: Tick | None = None
    bars: Sequence[Bar] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class AccountReading:
    """`deals` is None when the deal history could not be read (`deals_error` says why): the rest of the reading
    still counts, but nothing that needs the history (balance operations, close reasons) may be concluded from it."""

    taken_at: datetime
    state: AccountState
    terminal: TerminalState
    positions: Sequence[Position]
    deals: Sequence[Deal] | None
    deals_since: datetime
    deals_error: str = ""
    market: Mapping[str, SymbolMarket] = field(default_factory=dict)

    @property
    def symbols_held(self) -> list[str]:
        return sorted({position.symbol for position in self.positions})
