"""Netting accounts: the bot trades of one canonical symbol form a group matched to that symbol's one position.

On a netting account every order adds to or reduces the symbol's position, so tickets, tags and tolerances say
nothing about which trade is which: only the group's net volume can be compared with the position.

Decisions where the spec is silent:
- A missing trade's close reason is looked up by its own ticket, as the spec's close-reason rule reads (the live
  sync passes the ticket of the position the group was last matched to).
- The volume-weighted mean entry is computed exactly (34 significant digits) and only its distance is rounded to
  whole points.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from reconciliation.matching.model import (
    BotTrade,
    Deal,
    Divergence,
    MissingPosition,
    NetMatch,
    ReconciliationResult,
    Side,
    SymbolTable,
    Tolerances,
    UnmatchedPosition,
    ZeroNetGroup,
)
from reconciliation.matching.rules import (
    Pos,
    entry_divergence,
    has_level,
    last_closing_deals,
    level_divergence,
    missing_reason,
    side_divergence,
    unmatched_of,
    volume_divergence,
)

_ZERO = Decimal(0)


def net_volume(trades: Sequence[BotTrade]) -> Decimal:
    """Buys minus sells."""
    return sum((t.volume if t.side == "buy" else -t.volume for t in trades), _ZERO)


def _mean_entry(trades: Sequence[BotTrade], side: Side) -> Decimal:
    """Volume-weighted mean entry of the trades on `side` (there is at least one: the net leans that way)."""
    on_side = [t for t in trades if t.side == side]
    total = sum((t.volume for t in on_side), _ZERO)
    return sum((t.volume * t.entry_price for t in on_side), _ZERO) / total


def _common_level(levels: Sequence[Decimal | None]) -> tuple[bool, Decimal | None]:
    """(True, level) when every trade has the same level (none counting as a value), else (False, None)."""
    values = {level if has_level(level) else None for level in levels}
    return (True, values.pop()) if len(values) == 1 else (False, None)


def _net_divergences(
    *, trades: Sequence[BotTrade], net: Decimal, pos: Pos, tolerances: Tolerances
) -> tuple[Divergence, ...]:
    position, scale = pos.position, pos.scale
    side: Side = "buy" if net > 0 else "sell"
    found: list[Divergence | None] = [
        side_divergence(expected=side, position=position),
        entry_divergence(expected=_mean_entry(trades, side), position=position, scale=scale),
        volume_divergence(expected=abs(net), position=position, tolerances=tolerances),
    ]
    for kind, levels, actual in (
        ("sl_mismatch", [t.sl for t in trades], position.sl),
        ("tp_mismatch", [t.tp for t in trades], position.tp),
    ):
        common, expected = _common_level(levels)
        if common:
            found.append(level_divergence(kind=kind, expected=expected, actual=actual, scale=scale))
    return tuple(divergence for divergence in found if divergence is not None)


def reconcile_netting(
    *,
    table: SymbolTable,
    trades: Sequence[BotTrade],
    keys: Sequence[str],
    prepared: Sequence[Pos],
    deals: Sequence[Deal],
    tolerances: Tolerances,
) -> ReconciliationResult:
    groups: dict[str, list[int]] = {}  # canonical key -> trade indexes; insertion order = first trade's order
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    position_of: dict[str, Pos] = {}  # the lowest ticket when several terminal names share a canonical name
    for pos in sorted(prepared, key=lambda pos: pos.position.ticket):
        position_of.setdefault(pos.key, pos)

    net_matches: list[NetMatch] = []
    zero_net: list[ZeroNetGroup] = []
    missing_indexes: list[int] = []
    for key, indexes in groups.items():
        members = [trades[index] for index in indexes]
        ids = tuple(trade.id for trade in members)
        net = net_volume(members)
        if net == 0:
            zero_net.append(ZeroNetGroup(bot_trade_ids=ids, symbol=table.canonical_name(key)))
            continue
        pos = position_of.get(key)
        if pos is None:
            missing_indexes.extend(indexes)
            continue
        pos.used = True
        net_matches.append(
            NetMatch(
                bot_trade_ids=ids,
                ticket=pos.position.ticket,
                symbol=pos.spec.canonical,
                net_volume=net,
                divergences=_net_divergences(trades=members, net=net, pos=pos, tolerances=tolerances),
            )
        )

    missing_indexes.sort()
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
    return ReconciliationResult(
        matches=(),
        net_matches=tuple(net_matches),
        unmatched_positions=unmatched,
        missing_positions=missing,
        zero_net_groups=tuple(zero_net),
    )
