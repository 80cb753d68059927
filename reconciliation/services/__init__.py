"""Writes of the reconciliation app. Split by concern; everything is re-exported here."""

from reconciliation.services.bot_trades import BotTradeRegistration, bot_trade_close, bot_trade_register
from reconciliation.services.events import EventStateError, event_acknowledge, event_resolve, events_apply
from reconciliation.services.scheduling import (
    SYNC_PERIODIC_TASK_NAME,
    ScheduledSyncOutcome,
    account_lock_acquire,
    account_lock_release,
    account_sync_scheduled,
    sync_cycle_count,
    sync_cycle_run,
    sync_interval_seconds,
)
from reconciliation.services.sync import AccountSyncResult, account_sync, account_sync_failure_record

__all__ = [
    "SYNC_PERIODIC_TASK_NAME",
    "AccountSyncResult",
    "BotTradeRegistration",
    "EventStateError",
    "ScheduledSyncOutcome",
    "account_lock_acquire",
    "account_lock_release",
    "account_sync",
    "account_sync_failure_record",
    "account_sync_scheduled",
    "bot_trade_close",
    "bot_trade_register",
    "event_acknowledge",
    "event_resolve",
    "events_apply",
    "sync_cycle_count",
    "sync_cycle_run",
    "sync_interval_seconds",
]
