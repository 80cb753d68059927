"""Hedging accounts: one position per trade, matched in three passes (ticket, tag, tolerance).

Decisions where the spec is silent:
- Every distance of a pair (entry, SL, TP) uses the live position's symbol spec: the terminal symbol is what was
  actually traded, and several terminal symbols may share one canonical name.
- A bot trade with a ticket whose position is already claimed by an earlier bot trade with the same ticket is
  missing, like one whose ticket is not open (the ticket rule: it takes part in the ticket pass only).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal

from reconciliation.matching.model import (
    TYPE_OF_SIDE,
    BotTrade,
    Deal,
    Divergence,
    Match,
    Method,
    MissingPosition,
    ReconciliationResult,
    SymbolTable,
    Tolerances,
    UnmatchedPosition,
)
from reconciliation.matching.rules import (
    HUNDRED,
    ONE,
    Pos,
    entry_divergence,
    last_closing_deals,
    level_divergence,
    missing_reason,
    points,
    side_divergence,
    unmatched_of,
    volume_divergence,
)


def _divergences(
    *, trade: BotTrade, trade_key: str, pos: Pos, table: SymbolTable, tolerances: Tolerances
) -> tuple[Divergence, ...]:
    position, scale = pos.position, pos.scale
    found: list[Divergence | None] = []
    if trade_key != pos.key:
        found.append(
            Divergence(
                "symbol_mismatch", {"expected": table.canonical_name(trade_key), "actual": pos.spec.canonical}
            )
        )
    found.append(side_divergence(expected=trade.side, position=position))
    found.append(entry_divergence(expected=trade.entry_price, position=position, scale=scale))
    found.append(volume_divergence(expected=trade.volume, position=position, tolerances=tolerances))
    found.append(level_divergence(kind="sl_mismatch", expected=trade.sl, actual=position.sl, scale=scale))
    found.append(level_divergence(kind="tp_mismatch", expected=trade.tp, actual=position.tp, scale=scale))
    return tuple(divergence for divergence in found if divergence is not None)


# ---------------------------------------------------------------- passes


def _ticket_pass(*, trades: Sequence[BotTrade], positions: Sequence[Pos]) -> dict[int, tuple[Pos, Method]]:
    by_ticket = {pos.position.ticket: pos for pos in positions}
    found: dict[int, tuple[Pos, Method]] = {}
    for index, trade in enumerate(trades):
        pos = by_ticket.get(trade.ticket) if trade.ticket is not None else None
        if pos is not None and not pos.used:
            pos.used = True
            found[index] = (pos, "ticket")
    return found


def _tag_pass(
    *, trades: Sequence[BotTrade], keys: Sequence[str], pending: list[int], positions: Sequence[Pos]
) -> dict[int, tuple[Pos, Method]]:
    by_comment: dict[str, list[Pos]] = {}
    for pos in positions:
        if not pos.used and pos.position.comment:
            by_comment.setdefault(pos.position.comment, []).append(pos)
    for candidates in by_comment.values():
        candidates.sort(key=lambda pos: pos.position.ticket)
    found: dict[int, tuple[Pos, Method]] = {}
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
    positions: Sequence[Pos],
    tolerances: Tolerances,
) -> dict[int, tuple[Pos, Method]]:
    # Positions grouped by (canonical, type, terminal symbol) and sorted by price, so each bot trade only
    # looks at the price window that can possibly be within the entry limit (no full cross product).
    groups: dict[tuple[str, int], dict[str, tuple[list[Decimal], list[Pos]]]] = {}
    for pos in sorted((pos for pos in positions if not pos.used), key=lambda pos: pos.position.price_open):
        by_symbol = groups.setdefault((pos.key, pos.position.type), {})
        prices, members = by_symbol.setdefault(pos.position.symbol, ([], []))
        prices.append(pos.position.price_open)
        members.append(pos)

    by_ticket: dict[int, Pos] = {}
    candidates: list[tuple[int, Decimal, int, int, int]] = []
    for index in pending:
        trade = trades[index]
        group = groups.get((keys[index], TYPE_OF_SIDE[trade.side]))
        if not group:
            continue
        volume_limit = trade.volume * tolerances.match_volume_percent  # compared with 100 x the difference
        for prices, members in group.values():
            scale = members[0].scale
            margin = (scale.match_entry + ONE) * scale.point  # superset of the rounded-points window
            low = bisect.bisect_left(prices, trade.entry_price - margin)
            high = bisect.bisect_right(prices, trade.entry_price + margin)
            for pos in members[low:high]:
                position = pos.position
                volume_diff = abs(position.volume - trade.volume)
                if volume_diff * HUNDRED > volume_limit:
                    continue
                entry_points = points(trade.entry_price, position.price_open, scale.point)
                if entry_points > scale.match_entry:
                    continue
                by_ticket[position.ticket] = pos
                candidates.append((entry_points, volume_diff, position.time, position.ticket, index))

    # Tie-breaks per spec: entry distance, volume difference, position time, ticket, bot-trade order.
    candidates.sort()
    found: dict[int, tuple[Pos, Method]] = {}
    for *_, ticket, index in candidates:
        pos = by_ticket[ticket]
        if pos.used or index in found:
            continue
        pos.used = True
        found[index] = (pos, "fuzzy")
    return found


def reconcile_hedging(
    *,
    table: SymbolTable,
    trades: Sequence[BotTrade],
    keys: Sequence[str],
    prepared: Sequence[Pos],
    deals: Sequence[Deal],
    tolerances: Tolerances,
) -> ReconciliationResult:
    matched = _ticket_pass(trades=trades, positions=prepared)
    # The ticket rule: a bot trade that knows its ticket takes part in the ticket pass only.
    pending = [index for index, trade in enumerate(trades) if trade.ticket is None]
    if pending:
        matched.update(_tag_pass(trades=trades, keys=keys, pending=pending, positions=prepared))
        pending = [index for index in pending if index not in matched]
    if pending:
        matched.update(
            _tolerance_pass(
                trades=trades, keys=keys, pending=pending, positions=prepared, tolerances=tolerances
            )
        )

    matches = tuple(
        Match(
            bot_trade_id=trades[index].id,
            ticket=pos.position.ticket,
            method=method,
            divergences=_divergences(
                trade=trades[index], trade_key=keys[index], pos=pos, table=table, tolerances=tolerances
            ),
        )
        for index, (pos, method) in sorted(matched.items())
    )
    missing_indexes = [index for index in range(len(trades)) if index not in matched]
    last_deals = last_closing_deals(deals) if missing_indexes else {}
    missing = tuple(
        MissingPosition(
            bot_trade_id=trades[index].id,
            closed_by=missing_reason(ticket=trades[index].ticket, last_deals=last_deals),
        )
        for index in missing_indexes
    )
    unmatched = tuple(
        UnmatchedPosition(ticket=pos.position.ticket, symbol=pos.spec.canonical)
        for pos in unmatched_of(prepared)
    )
    return ReconciliationResult(matches=matches, unmatched_positions=unmatched, missing_positions=missing)
