"""The sync run log (AccountSync): one row per account sync, written by the account-sync pipeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from accounts.models import TradingAccount
from reconciliation.models import AccountSync


def account_sync_record(
    *,
    account: TradingAccount,
    started_at: datetime,
    duration_seconds: float,
    ok: bool,
    cycle_id: int | None = None,
    **counts: Any,
) -> AccountSync:
    """One run: `ok` false for a failed reading (error_class, error_message); an ok run may still carry a
    reconciliation_error (the snapshot and the guards went on without it)."""
    return AccountSync.objects.create(
        account=account,
        cycle_id=cycle_id,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=duration_seconds),
        duration_ms=int(duration_seconds * 1000),
        ok=ok,
        **counts,
    )


def account_sync_build(
    *,
    account: TradingAccount,
    started_at: datetime,
    duration_seconds: float,
    ok: bool,
    cycle_id: int | None = None,
    **counts: Any,
) -> AccountSync:
    """The run record, not saved: the account sync inserts it with its last statement (core.db.WriteBatch)."""
    return AccountSync(
        account=account,
        cycle_id=cycle_id,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=duration_seconds),
        duration_ms=int(duration_seconds * 1000),
        ok=ok,
        **counts,
    )


def account_sync_guards_failed(*, sync_id: int, error: str) -> None:
    """The guards failed after the run was stored: keep why on the run."""
    AccountSync.objects.filter(pk=sync_id).update(guards_error=error[:500])
