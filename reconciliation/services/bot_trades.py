"""Bot trades from the signal bot: register (idempotent on account + signal id + leg) and mark closed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import TradingAccount, User
from core.exceptions import ConflictError
from reconciliation.models import BotTrade, BotTradeStatus

logger = logging.getLogger(__name__)

# Fields a re-registration may change: what the bot learns later (the ticket after the fill, SL/TP moves...).
# The order itself (symbol, side, volume, entry price) may not change: (account, signal id, leg) is an idempotency
# key, and a key re-sent with another order is a conflict, never a silent overwrite.
_UPDATABLE = ("approval_id", "sl", "tp", "ticket", "magic", "tag")
_IDENTITY = ("symbol", "side", "volume", "entry_price")


def _stop_on_the_losing_side(*, side: str, entry_price: Decimal, sl: Decimal | None) -> None:
    """As sizing refuses it: a buy's stop below its entry, a sell's above."""
    if sl is None:
        return
    if (side == "buy" and sl >= entry_price) or (side == "sell" and sl <= entry_price):
        where = "below" if side == "buy" else "above"
        raise ValidationError(
            {"sl": f"A {side}'s stop loss must be {where} its entry price ({entry_price})."}
        )


@dataclass(frozen=True, slots=True)
class BotTradeRegistration:
    bot_trade: BotTrade
    created: bool
    changed: bool


def _level(value: Decimal | None) -> Decimal | None:
    """0 means "no level" for SL/TP, as in MT5."""
    return None if value is None or value == 0 else value


@transaction.atomic
def bot_trade_register(
    *,
    account: TradingAccount,
    signal_id: str,
    leg: int,
    symbol: str,
    side: str,
    volume: Decimal,
    entry_price: Decimal,
    approval_id: str = "",
    sl: Decimal | None = None,
    tp: Decimal | None = None,
    ticket: int | None = None,
    magic: int | None = None,
    tag: str = "",
) -> BotTradeRegistration:
    """Create the bot trade, or return the existing one for (account, signal_id, leg) with its updatable fields
    refreshed. Repeating the same request changes nothing. Raises ValidationError (nothing stored) for bad values
    and ConflictError when the existing trade is closed or names another symbol or side."""
    values = {
        "approval_id": approval_id.strip(),
        "symbol": symbol.strip().upper(),
        "side": side,
        "volume": volume,
        "entry_price": entry_price,
        "sl": _level(sl),
        "tp": _level(tp),
        "ticket": ticket,
        "magic": magic,
        "tag": tag.strip(),
    }
    existing = (
        BotTrade.objects.select_for_update()
        .filter(account=account, signal_id=signal_id.strip(), leg=leg)
        .first()
    )
    if existing is None:
        _stop_on_the_losing_side(side=side, entry_price=entry_price, sl=values["sl"])
        trade = BotTrade(account=account, signal_id=signal_id, leg=leg, **values)
        trade.full_clean()
        trade.save()
        return BotTradeRegistration(bot_trade=trade, created=True, changed=True)

    for name in _IDENTITY:
        if getattr(existing, name) != values[name]:  # Decimal compares by value: 0.5 == 0.50
            raise ConflictError(
                f"Bot trade {existing.signal_id}#{existing.leg} is registered with {name} "
                f"{getattr(existing, name)!r}, not {values[name]!r}.",
                extra={"bot_trade_id": existing.pk, "field": name},
            )
    _stop_on_the_losing_side(side=side, entry_price=entry_price, sl=values["sl"])
    changed = [name for name in _UPDATABLE if getattr(existing, name) != values[name]]
    if changed and existing.status == BotTradeStatus.CLOSED:
        raise ConflictError(
            f"Bot trade {existing.signal_id}#{existing.leg} is closed and can no longer change.",
            extra={"bot_trade_id": existing.pk, "fields": changed},
        )
    if changed:
        for name in changed:
            setattr(existing, name, values[name])
        existing.full_clean()
        existing.save(update_fields=[*changed, "updated_at"])
    return BotTradeRegistration(bot_trade=existing, created=False, changed=bool(changed))


@transaction.atomic
def bot_trade_close(
    *, bot_trade: BotTrade, closed_at: datetime | None = None, actor: User | None = None
) -> BotTrade:
    """Mark the bot trade closed (the bot no longer expects its position). Idempotent: closing a closed trade
    returns it unchanged. The next sync no longer matches it, so its missing/divergence events go."""
    trade = BotTrade.objects.select_for_update().get(pk=bot_trade.pk)
    if trade.status == BotTradeStatus.CLOSED:
        return trade
    closed_at = closed_at or timezone.now()
    if timezone.is_naive(closed_at):
        raise ValidationError({"closed_at": "The closing time must carry a time zone."})
    trade.status, trade.closed_at = BotTradeStatus.CLOSED, closed_at
    trade.full_clean()
    trade.save(update_fields=["status", "closed_at", "updated_at"])
    logger.info("bot trade %s closed by %s", trade.pk, actor.pk if actor else "the system")
    return trade
