"""Writes of the reconciliation app. Split by concern; everything is re-exported here."""

from reconciliation.services.bot_trades import BotTradeRegistration, bot_trade_close, bot_trade_register
from reconciliation.services.events import EventStateError, event_acknowledge, event_resolve, events_apply
from reconciliation.services.runs import account_sync_guards_failed, account_sync_record
from reconciliation.services.scheduling import (
    SYNC_PERIODIC_TASK_NAME,
    sync_cycle_count,
    sync_cycle_run,
    sync_cycles_recount,
    sync_interval_seconds,
)
from reconciliation.services.sync import (
    ReconciliationOutcome,
    ReconciliationReads,
    ReconciliationStored,
    reconciliation_prepare,
    reconciliation_reads,
    reconciliation_store,
    stored_positions_read,
)

__all__ = [
    "SYNC_PERIODIC_TASK_NAME",
    "BotTradeRegistration",
    "EventStateError",
    "ReconciliationOutcome",
    "ReconciliationReads",
    "ReconciliationStored",
    "account_sync_guards_failed",
    "account_sync_record",
    "bot_trade_close",
    "bot_trade_register",
    "event_acknowledge",
    "event_resolve",
    "events_apply",
    "reconciliation_prepare",
    "reconciliation_reads",
    "reconciliation_store",
    "stored_positions_read",
    "sync_cycle_count",
    "sync_cycle_run",
    "sync_cycles_recount",
    "sync_interval_seconds",
]
