"""Writes of the reconciliation app. Split by concern; everything is re-exported here."""

from reconciliation.services.bot_trades import BotTradeRegistration, bot_trade_close, bot_trade_register
from reconciliation.services.events import EventStateError, event_acknowledge, event_resolve, events_apply
from reconciliation.services.sync import AccountSyncResult, account_sync

__all__ = [
    "AccountSyncResult",
    "BotTradeRegistration",
    "EventStateError",
    "account_sync",
    "bot_trade_close",
    "bot_trade_register",
    "event_acknowledge",
    "event_resolve",
    "events_apply",
]
