"""account_sync: read the terminal once, then hand the same reading to the snapshot, reconciliation and the guards.

    read (no transaction)  ──►  snapshot ─► reconciliation ─► guards ─► run record   (ONE transaction, one commit)

1. `account_reading_take`: account info, terminal info, positions, deals since the cursor, market data of the
   symbols held. A failed call or a terminal off its trade server makes the sync *failed*: nothing is missing, no
   event opens or closes, live positions stay as they were, the guards record that they wait and why.
2. `reconciliation_prepare` (no transaction). Its failure (a symbol the terminal cannot describe, bad data) is
   recorded on the run and stops nothing else.
3. One transaction: the snapshot (accounts), reconciliation's writes (in a savepoint, so their failure is isolated),
   the guards under their row lock with no terminal call (in a savepoint: a guard failure is stored on the run,
   raises an operator alert and never undoes the sync), the run record (AccountSync). The savepoints are
   `core.db.lazy_savepoint`s: each rides in the round trip of its block's first statement and is never released,
   so the isolation costs a round trip only when a block fails (ROLLBACK TO SAVEPOINT). Writes that nothing reads back
   (the events' touch, the guard state, the run record) go as one last statement (core.db.WriteBatch), which also
   sets how the transaction commits: a routine sync commits with `synchronous_commit = off` (a database crash may
   lose its last fraction of a second of syncs, which the next sync reads again; docs/PERFORMANCE.md); a sync
   that changes a guard level, opens an alert or an event, or asks for a close commits synchronously.
4. The deals cursor (`TradingAccount.deals_cursor`, read with the account, written in the last statement) advances
   when the deals were read and the guards (which apply balance operations from them) succeeded, so a failed guard
   run sees those deals again. Reconciliation does not hold it back: a missing
   position's close reason is looked up by its ticket later anyway.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount
from accounts.services import account_snapshot_record
from core.db import WriteBatch
from core.readcache import account_reads_invalidate
from core.realtime import STAFF_GROUP, account_group, broadcast_groups
from guards.services import account_guards_evaluate, account_guards_failure_record
from integrations.mt5.errors import GatewayCircuitOpen, GatewayError, GatewayUnavailable
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.reading import AccountReading
from pipeline.services.identity import TerminalIdentityChanged, reading_identity_check
from pipeline.services.reading import TerminalDisconnected, account_reading_take, deals_cursor_advance
from reconciliation.models import BotTrade
from reconciliation.services.runs import account_sync_build
from reconciliation.services.sync import (
    ReconciliationOutcome,
    ReconciliationReads,
    ReconciliationStored,
    reconciliation_prepare,
    reconciliation_reads,
    reconciliation_store,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccountSyncResult:
    account_id: int
    ok: bool
    snapshot: AccountSnapshot | None = None
    positions: int = 0
    matched: int = 0
    unmatched: int = 0
    missing: int = 0
    events_opened: int = 0
    events_closed: int = 0
    error: str = ""
    error_class: str = ""
    retryable: bool = False
    reconciliation_error: str = ""
    guards_error: str = ""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _sync_broadcast(*, account_id: int, event: str) -> None:
    # The sync committed (or was recorded failed): the account's cached API reads are stale from now on.
    account_reads_invalidate(account_id=account_id)
    broadcast_groups([account_group(account_id), STAFF_GROUP], event, account_id=account_id)


def account_sync_failure_record(
    *, account: TradingAccount, exc: Exception, cycle_id: int | None = None
) -> AccountSyncResult:
    """Record a sync that failed before it could start (e.g. the gateway could not be built)."""
    return _sync_failed(
        account=account, started_at=timezone.now(), clock=time.monotonic(), exc=exc, cycle_id=cycle_id
    )


def _sync_failed(
    *, account: TradingAccount, started_at: datetime, clock: float, exc: Exception, cycle_id: int | None
) -> AccountSyncResult:
    """The run (failed) and the guards' "waiting, and why" in one transaction, committed synchronously."""
    # A link failure is worth one quick retry; an open circuit is not (it refuses calls until its reset time).
    retryable = isinstance(exc, GatewayUnavailable) and not isinstance(exc, GatewayCircuitOpen)
    message = str(exc)[:500]
    logger.warning("sync of account %s failed: %s: %s", account.pk, type(exc).__name__, message)
    guards_error = ""
    try:
        with transaction.atomic():
            writes = WriteBatch()
            writes.require_durable()
            guards_error = _guards_evaluate(
                account=account,
                snapshot=None,
                reading=None,
                now=started_at,
                failure=_failure_reason(exc, message),
                writes=writes,
            )
            writes.insert(
                [
                    account_sync_build(
                        account=account,
                        cycle_id=cycle_id,
                        started_at=started_at,
                        duration_seconds=time.monotonic() - clock,
                        ok=False,
                        error_class=type(exc).__name__,
                        error_message=message,
                        guards_error=guards_error[:500],
                    )
                ]
            )
            writes.flush()
    except Exception:
        logger.exception("the failed sync of account %s could not be recorded", account.pk)
    _sync_broadcast(account_id=account.pk, event="sync.failed")
    return AccountSyncResult(
        account_id=account.pk,
        ok=False,
        error=message,
        error_class=type(exc).__name__,
        retryable=retryable,
        guards_error=guards_error,
    )


def _failure_reason(exc: Exception, message: str) -> str:
    """What the guards say they wait for."""
    if isinstance(exc, TerminalIdentityChanged):
        return f"the terminal is not this account ({message})"
    if isinstance(exc, TerminalDisconnected):
        return "the terminal is not connected to its trade server"
    return f"the terminal could not be read ({type(exc).__name__}: {message})"


def _guards_evaluate(
    *,
    account: TradingAccount,
    snapshot: AccountSnapshot | None,
    reading: AccountReading | None,
    now: datetime,
    writes: WriteBatch,
    failure: str = "",
) -> str:
    """The guards, inside the sync's transaction. Their failure never undoes the sync: their savepoint (and their
    batched writes) roll back, the error is logged with its traceback, returned (the caller stores it on the run)
    and raised as an operator alert."""
    try:
        with writes.savepoint():
            account_guards_evaluate(
                account=account, snapshot=snapshot, reading=reading, now=now, failure=failure, writes=writes
            )
    except Exception as exc:
        logger.exception("guards of account %s failed on its sync", account.pk)
        error = _describe(exc)
        writes.require_durable()
        try:
            with transaction.atomic():
                account_guards_failure_record(account=account, error=error, now=now)
        except Exception:
            logger.exception("the guard failure of account %s could not be recorded", account.pk)
        return error
    return ""


def _reads(*, account: TradingAccount) -> ReconciliationReads | None:
    """None when the combined read fails: then the identity check and reconciliation each read on their own, and
    fail or are recorded as they always were (a failed bot-trade read is a reconciliation error, not a failed sync)."""
    try:
        return reconciliation_reads(account_id=account.pk, stored_positions=account.max_ticket_seen != 0)
    except DatabaseError:
        logger.warning(
            "account %s: the reads before the sync's transaction failed; read one by one", account.pk
        )
        return None


def _reconciliation_prepare(
    *,
    account: TradingAccount,
    reading: AccountReading,
    gateway: Mt5Gateway,
    now: datetime,
    trades: list[BotTrade] | None,
) -> tuple[ReconciliationOutcome | None, str]:
    try:
        prepared = reconciliation_prepare(
            account=account, reading=reading, gateway=gateway, now=now, trades=trades
        )
        return prepared, ""
    except Exception as exc:  # an unknown symbol, bad data, the link lost during a close-reason look-up
        logger.warning("reconciliation of account %s failed: %s", account.pk, _describe(exc), exc_info=True)
        return None, _describe(exc)


def _reconciliation_store(
    *, account: TradingAccount, prepared: ReconciliationOutcome, now: datetime, writes: WriteBatch
) -> tuple[ReconciliationStored | None, str]:
    try:
        with writes.savepoint():  # its failure keeps the snapshot, the guards and the run record
            return reconciliation_store(account=account, prepared=prepared, now=now, writes=writes), ""
    except Exception as exc:
        logger.exception("reconciliation of account %s could not be stored", account.pk)
        return None, _describe(exc)


def account_sync(
    *, account: TradingAccount, gateway: Mt5Gateway, now: datetime | None = None, cycle_id: int | None = None
) -> AccountSyncResult:
    """Sync one account. Never raises for terminal faults, bad terminal data or a failing step: the run is
    recorded and the result says what failed (`retryable` for link failures). Unexpected errors while storing the
    snapshot are recorded, then re-raised."""
    now = now or timezone.now()
    clock = time.monotonic()
    try:
        reading = account_reading_take(account=account, gateway=gateway, now=now)
        # The stored positions (identity) and the open bot trades (matcher) in one round trip, after the reading;
        # a first reading (no watermark yet) becomes the identity's reference, nothing stored to compare it with.
        reads = _reads(account=account)
        highest_ticket = reading_identity_check(
            account=account, reading=reading, stored=reads.stored_positions if reads else None
        )
    except (GatewayError, TerminalDisconnected, TerminalIdentityChanged) as exc:
        return _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
    except Exception as exc:
        _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
        raise

    prepared, reconciliation_error = _reconciliation_prepare(
        account=account,
        reading=reading,
        gateway=gateway,
        now=now,
        trades=reads.open_trades if reads else None,
    )
    try:
        # One transaction for the sync's writes: one commit (one WAL flush, skipped for a routine sync).
        with transaction.atomic():
            writes = WriteBatch()
            snapshot = account_snapshot_record(
                account=account, state=reading.state, taken_at=now, max_ticket_seen=highest_ticket
            )
            stored = None
            if prepared is not None:
                stored, reconciliation_error = _reconciliation_store(
                    account=account, prepared=prepared, now=now, writes=writes
                )
            if stored is None:
                prepared = None
            guards_error = _guards_evaluate(
                account=account, snapshot=snapshot, reading=reading, now=now, writes=writes
            )
            run = account_sync_build(
                account=account,
                cycle_id=cycle_id,
                started_at=now,
                duration_seconds=time.monotonic() - clock,
                ok=True,
                reconciliation_error=reconciliation_error,
                guards_error=guards_error[:500],
                positions=len(reading.positions),
                matched=prepared.matched if prepared else 0,
                unmatched=prepared.unmatched if prepared else 0,
                missing=prepared.missing if prepared else 0,
                events_opened=stored.events_opened if stored else 0,
                events_gone=stored.events_gone if stored else 0,
            )
            writes.insert([run])
            advance = not guards_error and reading.deals is not None
            if advance:
                deals_cursor_advance(account=account, to=now, writes=writes)
            writes.flush()
            _sync_broadcast(account_id=account.pk, event="sync.completed")  # after the commit
    except Exception as exc:
        _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
        raise

    if advance:
        account.deals_cursor = now  # committed
    return AccountSyncResult(
        account_id=account.pk,
        ok=True,
        snapshot=snapshot,
        positions=len(reading.positions),
        matched=run.matched,
        unmatched=run.unmatched,
        missing=run.missing,
        events_opened=run.events_opened,
        events_closed=run.events_gone,
        reconciliation_error=reconciliation_error,
        guards_error=guards_error,
    )
