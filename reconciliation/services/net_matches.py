"""Netting accounts: keep one NetMatch row per matched group (a symbol's open bot trades and its one position).

Called by the sync inside its transaction, before the bot trades are written: it returns the bot trades whose
group link changed so that the sync's one bulk update of bot trades carries them too. A hedging account that never
was netting costs no query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import TradingAccount
from reconciliation import matching
from reconciliation.models import BotTrade, NetMatch, Side


def divergence_detail(divergence: matching.Divergence) -> dict[str, Any]:
    """A divergence's detail as stored (events, net matches): Decimals as plain strings without trailing zeros."""
    return {
        key: format(value.normalize(), "f") if isinstance(value, Decimal) else value
        for key, value in divergence.detail.items()
    }


def _row_values(net: matching.NetMatch, position_volume: Decimal) -> dict[str, Any]:
    return {
        "ticket": net.ticket,
        "side": Side.BUY if net.net_volume > 0 else Side.SELL,
        "net_volume": abs(net.net_volume),
        "position_volume": position_volume,
        "divergences": [{"kind": d.kind, **divergence_detail(d)} for d in net.divergences],
    }


def net_matches_store(
    *,
    account: TradingAccount,
    net_matches: Sequence[matching.NetMatch],
    position_volumes: Mapping[int, Decimal],
    trades: Sequence[BotTrade],
    now: datetime,
) -> list[BotTrade]:
    """Bring the account's NetMatch rows in line with one successful sync; link each open bot trade to its group's
    row (or to none). Returns the bot trades whose link changed (not saved here)."""
    existing = {row.canonical_symbol: row for row in NetMatch.objects.filter(account=account)}
    rows_by_trade: dict[int, NetMatch] = {}
    new: list[NetMatch] = []
    changed: list[NetMatch] = []
    kept: list[int] = []
    for net in net_matches:
        values = _row_values(net, position_volumes[net.ticket])
        row = existing.pop(net.symbol, None)
        if row is None:
            row = NetMatch(
                account=account, canonical_symbol=net.symbol, first_seen_at=now, last_seen_at=now, **values
            )
            new.append(row)
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.last_seen_at = now
            changed.append(row)
        else:
            kept.append(row.pk)
        for bot_trade_id in net.bot_trade_ids:
            rows_by_trade[int(bot_trade_id)] = row

    if existing:  # groups no longer matched: their position closed or they net to zero
        NetMatch.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
    if new:
        NetMatch.objects.bulk_create(new)
    if changed:
        NetMatch.objects.bulk_update(
            changed, ["ticket", "side", "net_volume", "position_volume", "divergences", "last_seen_at"]
        )
    if kept:
        NetMatch.objects.filter(pk__in=kept).update(last_seen_at=now)

    relinked: list[BotTrade] = []
    for trade in trades:
        row = rows_by_trade.get(trade.pk)
        wanted = row.pk if row is not None else None
        if trade.net_match_id != wanted:
            trade.net_match = row
            relinked.append(trade)
    return relinked
