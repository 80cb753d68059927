"""Trades from an account's deals, and the evaluation state as JSON: what the live evaluation keeps between
snapshots (shared/spec/rules.md; issue #16 step 3). Pure: no Django.

Trades: a trade is one position (`position_id`). It is opened by its first IN deal (that deal's time is the trade's
`open_time`); every deal of the position adds `profit + swap + commission + fee` to its profit; it is closed when
the OUT / OUT_BY deals have taken out all the volume the IN deals put in (that deal's time is `close_time`). A
reversal (INOUT, netting accounts) closes the trade and opens a new one for the volume beyond it. An OUT deal of a
position whose IN deal was never seen (opened before the evaluation, or before tracking began) is a trade closed at
that deal with that deal's amount and no opening (it counts for closed profit, never as a trading day).

Only BUY/SELL deals are trades; BALANCE, CREDIT and BONUS are balance operations (spec/guards.md); other deal types
(charges, corrections, ...) are ignored here: they are already in the balance and equity the readings carry.

Deals are applied once each: the book remembers the latest tickets applied (overlapping history windows return the
same deals again), so one snapshot costs O(its deals), never a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from rules.evaluation import Breach, Day, Reading, RuleSet, RulesState, Trade

DEAL_BUY, DEAL_SELL = 0, 1
BALANCE_OPERATION_TYPES = frozenset({2, 3, 6})  # BALANCE, CREDIT, BONUS
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
RECENT_TICKETS = 500
_ZERO = Decimal(0)


class DealLike(Protocol):
    ticket: int
    position_id: int
    type: int
    entry: int
    volume: Decimal
    profit: Decimal
    swap: Decimal
    commission: Decimal
    fee: Decimal
    time: datetime


@dataclass(frozen=True, slots=True)
class TradeEvent:
    kind: str  # "opened" | "closed"
    time: datetime
    profit: Decimal = _ZERO


@dataclass(slots=True)
class OpenTrade:
    opened_at: datetime
    volume: Decimal
    profit: Decimal


@dataclass(slots=True)
class TradeBook:
    open: dict[int, OpenTrade] = field(default_factory=dict)
    recent: list[int] = field(default_factory=list)

    def seen(self, ticket: int) -> bool:
        return ticket in self.recent

    def remember(self, ticket: int) -> None:
        self.recent.append(ticket)
        if len(self.recent) > RECENT_TICKETS:
            del self.recent[: len(self.recent) - RECENT_TICKETS]

    def apply(self, deal: DealLike) -> list[TradeEvent]:
        """The trade events of one BUY/SELL deal (nothing for other types)."""
        if deal.type not in (DEAL_BUY, DEAL_SELL):
            return []
        amount = deal.profit + deal.swap + deal.commission + deal.fee
        trade = self.open.get(deal.position_id)
        if deal.entry == ENTRY_IN:
            if trade is None:
                self.open[deal.position_id] = OpenTrade(
                    opened_at=deal.time, volume=deal.volume, profit=amount
                )
                return [TradeEvent("opened", deal.time)]
            trade.volume += deal.volume
            trade.profit += amount
            return []
        if trade is None:  # opened before we were watching: a close with this deal's amount
            return [TradeEvent("closed", deal.time, amount)]
        trade.profit += amount
        if deal.entry == ENTRY_INOUT:
            beyond = deal.volume - trade.volume
            events = [TradeEvent("closed", deal.time, trade.profit)]
            del self.open[deal.position_id]
            if beyond > 0:
                self.open[deal.position_id] = OpenTrade(opened_at=deal.time, volume=beyond, profit=_ZERO)
                events.append(TradeEvent("opened", deal.time))
            return events
        trade.volume -= deal.volume
        if trade.volume <= 0:
            del self.open[deal.position_id]
            return [TradeEvent("closed", deal.time, trade.profit)]
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "open": {
                str(pid): [t.opened_at.isoformat(), str(t.volume), str(t.profit)]
                for pid, t in self.open.items()
            },
            "recent": list(self.recent),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TradeBook:
        data = data or {}
        return cls(
            open={
                int(pid): OpenTrade(datetime.fromisoformat(at), Decimal(volume), Decimal(profit))
                for pid, (at, volume, profit) in (data.get("open") or {}).items()
            },
            recent=[int(t) for t in data.get("recent") or []],
        )


def trades_from_deals(deals: Iterable[DealLike]) -> list[Trade]:
    """Every trade of a deal history (the offline side of the live book): for `rules_case` and the replay test."""
    book = TradeBook()
    trades: list[Trade] = []
    opened: dict[int, int] = {}  # position -> index of its open trade in `trades`
    for deal in sorted(deals, key=lambda d: (d.time, d.ticket)):
        for event in book.apply(deal):
            if event.kind == "opened":
                opened[deal.position_id] = len(trades)
                trades.append(Trade(open_time=event.time, close_time=None, profit=_ZERO))
            else:
                index = opened.pop(deal.position_id, None)
                if index is None:
                    # No opening seen: a close only (its open time before everything, so no trading day).
                    trades.append(
                        Trade(
                            open_time=datetime.min.replace(tzinfo=event.time.tzinfo),
                            close_time=event.time,
                            profit=event.profit,
                        )
                    )
                else:
                    trades[index] = Trade(
                        open_time=trades[index].open_time, close_time=event.time, profit=event.profit
                    )
    return trades


# ---------------------------------------------------------------- the evaluation state as JSON


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def state_to_json(state: RulesState) -> dict[str, Any]:
    last, breach = state.last, state.breach
    return {
        "days": [
            [
                d.day.isoformat(),
                d.start.isoformat(),
                str(d.base),
                _dec(d.boundary_balance),
                _dec(d.lowest_equity),
                str(d.closed_profit),
                d.traded,
            ]
            for d in state.days
        ],
        "trail_before": str(state.trail_before),
        "peak_equity": str(state.peak_equity),
        "last": None if last is None else [last.time.isoformat(), str(last.balance), str(last.equity)],
        "breach": None
        if breach is None
        else [breach.rule, breach.time.isoformat(), str(breach.equity), str(breach.limit)],
        "deposits": str(state.deposits),
    }


def state_from_json(rules: RuleSet, data: dict[str, Any]) -> RulesState:
    """The state under `rules` (the rule set's current terms: an edit applies from the next snapshot)."""
    last, breach = data.get("last"), data.get("breach")
    return RulesState(
        rules=rules,
        days=[
            Day(
                day=date.fromisoformat(d[0]),
                start=datetime.fromisoformat(d[1]),
                base=Decimal(d[2]),
                boundary_balance=_undec(d[3]),
                lowest_equity=_undec(d[4]),
                closed_profit=Decimal(d[5]),
                traded=bool(d[6]),
            )
            for d in data["days"]
        ],
        trail_before=Decimal(data["trail_before"]),
        peak_equity=Decimal(data["peak_equity"]),
        last=None
        if last is None
        else Reading(time=datetime.fromisoformat(last[0]), balance=Decimal(last[1]), equity=Decimal(last[2])),
        breach=None
        if breach is None
        else Breach(
            rule=breach[0],
            time=datetime.fromisoformat(breach[1]),
            equity=Decimal(breach[2]),
            limit=Decimal(breach[3]),
        ),
        deposits=Decimal(data.get("deposits", "0")),
    )


def observe(
    state: RulesState, book: TradeBook, *, reading: Reading, deals: Iterable[DealLike]
) -> tuple[Breach | None, Decimal]:
    """One fresh snapshot with the deals of its reading, in the offline evaluation's order: the day boundaries up
    to the reading, the balance operations (the reading's balance includes them), the reading, then the trade
    events at or before it. Deals after the reading's time are left for a later snapshot (not remembered).
    Returns the breach of this reading (if it breaches) and the net balance operations applied."""
    fresh = sorted(
        (d for d in deals if not book.seen(d.ticket) and d.time <= reading.time),
        key=lambda d: (d.time, d.ticket),
    )
    if state.last is not None and reading.time < state.last.time:
        return None, _ZERO  # an older reading than the last evaluated one: nothing to do
    state.advance_to(reading.time)
    moved = _ZERO
    for deal in fresh:
        if deal.type in BALANCE_OPERATION_TYPES and state.last is not None:
            state.balance_operation(deal.profit)
            moved += deal.profit
    breach = state.observe(reading)
    for deal in fresh:
        book.remember(deal.ticket)
        for event in book.apply(deal):
            if event.kind == "opened":
                state.trade_opened(event.time)
            else:
                state.trade_closed(event.time, event.profit)
    return breach, moved
