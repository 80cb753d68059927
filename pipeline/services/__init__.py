"""The account-sync pipeline (writes across accounts, reconciliation and guards). Re-exported here."""

from pipeline.services.reading import TerminalDisconnected, account_reading_take
from pipeline.services.scheduling import (
    ScheduledSyncOutcome,
    account_lock_acquire,
    account_lock_release,
    account_sync_scheduled,
)
from pipeline.services.sync import AccountSyncResult, account_sync, account_sync_failure_record

__all__ = [
    "AccountSyncResult",
    "ScheduledSyncOutcome",
    "TerminalDisconnected",
    "account_lock_acquire",
    "account_lock_release",
    "account_reading_take",
    "account_sync",
    "account_sync_failure_record",
    "account_sync_scheduled",
]
