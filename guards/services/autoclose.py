"""Auto-close: the one service that closes positions, whoever asks (shared/spec/guards.md "Auto-close").

Safety rules, in the order the code enforces them:
1. A `CloseIntent` is stored before anything is sent; its `idempotency_key` ("<trigger key>:<ticket>") is unique, so
   a second request for the same key gets the first one's intent and result, across processes and restarts.
2. Driving an intent holds a per-(account, ticket) lock (a PostgreSQL session advisory lock, released by the
   database if the process dies), and the first thing done under the lock is to re-read the position: a ticket
   that is gone is confirmed without sending, whoever closed it (our earlier order, a stop loss, the trader).
3. Before each order_send the intent is committed as `sent` with `order_sends` incremented (write-ahead), so a
   worker killed mid-send leaves an intent that the next run resolves from the terminal before sending again.
4. Every request carries `position=<ticket>` (on hedging accounts a close without it opens a new position) and our
   magic number. Retcodes follow shared/mt5/REFERENCE.md §8.

Call these outside a transaction: each state change must be committed before the terminal is called.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from accounts.models import TradingAccount, User
from guards.clock import guard_now, guard_sleep
from guards.models import OPEN_INTENT_STATES, AlertKind, CloseIntent, CloseTrigger, Guard, IntentState
from guards.selectors import guard_settings_for_account
from guards.services.alerts import alert_record
from guards.services.evidence import absence_judge, closing_deal, second_read_after
from guards.services.retries import retry_delay_seconds, retry_reason_stands, retry_schedule
from integrations.mt5 import constants as mt5c
from integrations.mt5.errors import GatewayCircuitOpen, GatewayError, GatewayUnavailable
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.types import Deal, Position, Side, SymbolSpec, TradeRequest

logger = logging.getLogger(__name__)

CONFIRMING = frozenset({mt5c.TRADE_RETCODE_DONE, mt5c.TRADE_RETCODE_POSITION_CLOSED})
PARTIAL = frozenset({mt5c.TRADE_RETCODE_DONE_PARTIAL})
PRICE_RETRY = frozenset(
    {mt5c.TRADE_RETCODE_REQUOTE, mt5c.TRADE_RETCODE_PRICE_CHANGED, mt5c.TRADE_RETCODE_PRICE_OFF}
)
AMBIGUOUS = frozenset({mt5c.TRADE_RETCODE_ERROR, mt5c.TRADE_RETCODE_TIMEOUT, mt5c.TRADE_RETCODE_CONNECTION})
INVALID_FILL = mt5c.TRADE_RETCODE_INVALID_FILL

SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
MAX_SENDS_PER_RUN = 10  # hard cap on order_send calls for one intent in one run, whatever the retcodes
MAX_UNKNOWN_PER_RUN = (
    2  # unknown outcomes in one run before leaving the intent unresolved for the recovery task
)
LOCK_WAIT_SECONDS = 30.0
PRICE_RETRY_BACKOFF_SECONDS = 0.25

_TRIGGER_GUARD = {
    CloseTrigger.DRAWDOWN: Guard.DRAWDOWN,
    CloseTrigger.DAILY_LOSS: Guard.DAILY_LOSS,
    CloseTrigger.MARKET: Guard.MARKET,
}


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    ticket: int
    state: str
    retcode: int | None = None
    error: str = ""
    intent_id: int | None = None


# ---------------------------------------------------------------- locking


_local_locks: dict[tuple[int, int], threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _advisory_key(account_id: int, ticket: int) -> int:
    digest = hashlib.blake2b(f"guards.close:{account_id}:{ticket}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def ticket_lock(*, account_id: int, ticket: int, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[bool]:
    """Exclusive right to drive closes of one position, across processes (PostgreSQL advisory lock; a
    process-local lock on other databases). Yields False when it could not be had within `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    if connection.vendor == "postgresql":
        key = _advisory_key(account_id, ticket)
        acquired = False
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
                acquired = bool(cursor.fetchone()[0])
                if acquired or time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    with _local_locks_guard:
        lock = _local_locks.setdefault((account_id, ticket), threading.Lock())
    acquired = lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


# ---------------------------------------------------------------- intents


def idempotency_key_for(*, trigger_key: str, ticket: int) -> str:
    return f"{trigger_key}:{ticket}"


def close_intent_get_or_create(
    *,
    account: TradingAccount,
    ticket: int,
    trigger: str,
    trigger_key: str,
    actor: User | None = None,
    symbol: str = "",
) -> tuple[CloseIntent, bool]:
    """The intent for (trigger_key, ticket), created if new. Safe under concurrency: the unique key decides."""
    key = idempotency_key_for(trigger_key=trigger_key, ticket=ticket)
    candidate = CloseIntent(
        idempotency_key=key,
        account=account,
        ticket=ticket,
        symbol=symbol,
        trigger=trigger,
        trigger_key=trigger_key,
        actor=actor,
    )
    candidate.full_clean(exclude=["account", "actor", "idempotency_key"], validate_constraints=False)
    return CloseIntent.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "account": account,
            "ticket": ticket,
            "symbol": symbol,
            "trigger": trigger,
            "trigger_key": trigger_key,
            "actor": actor,
        },
    )


def _save(intent: CloseIntent, *fields: str) -> None:
    intent.save(update_fields=[*fields, "updated_at"])


def _guard_of(intent: CloseIntent) -> str:
    return _TRIGGER_GUARD.get(CloseTrigger(intent.trigger), Guard.AUTOCLOSE)


def _alert(intent: CloseIntent, *, kind: str, message: str, now: datetime, **detail: Any) -> None:
    alert_record(
        account_id=intent.account_id,
        kind=kind,
        guard=_guard_of(intent),
        message=message,
        now=now,
        ticket=intent.ticket,
        symbol=intent.symbol,
        detail={
            "idempotency_key": intent.idempotency_key,
            "trigger": intent.trigger,
            "attempt": intent.attempt,
            **detail,
        },
        intent_id=intent.pk,
        actor_id=intent.actor_id,
    )


def _confirm(
    intent: CloseIntent,
    *,
    now: datetime,
    gateway: Mt5Gateway,
    evidence: str,
    result_deal: int = 0,
    price: Decimal | None = None,
    deal: Deal | None = None,
    closed_by: str | None = None,
) -> CloseIntent:
    """Confirm on evidence: `done` (our order's deal), `position_closed` (retcode 10036), `closing_deal` (the
    position's OUT/OUT_BY deal in the history) or `second_read` (still absent one sync later, terminal connected)."""
    outcome: dict[str, Any]
    if result_deal:
        outcome = {"closed_by": "guard", "deal": result_deal, "price": str(price), "by_us": True}
    else:
        if closed_by is None:
            try:
                closed_by, deal = closing_deal(gateway.deals_for_position(position_id=intent.ticket))
            except GatewayError as exc:
                closed_by, deal = "unknown", None
                logger.info("close #%s: deals not readable (%s)", intent.ticket, exc)
        by_us = (
            deal is not None
            and deal.magic == settings.MT5_PRODUCT_MAGIC
            and deal.reason == mt5c.DEAL_REASON_EXPERT
        )
        outcome = {
            "closed_by": "guard" if by_us else closed_by,
            "deal": deal.ticket if deal else None,
            "price": str(deal.price) if deal else None,
            "by_us": by_us,
        }
    outcome["evidence"] = evidence
    intent.state = IntentState.CONFIRMED
    intent.outcome = outcome
    intent.finished_at = now
    intent.retry_at = None
    _save(intent, "state", "outcome", "finished_at", "retry_at")
    how = "by our order" if outcome["by_us"] else f"already closed ({outcome['closed_by']})"
    _alert(
        intent,
        kind=AlertKind.CLOSE_CONFIRMED,
        message=f"Position #{intent.ticket} closed {how}",
        now=now,
        **outcome,
    )
    return intent


def _fail(intent: CloseIntent, *, now: datetime, retcode: int | None, error: str) -> CloseIntent:
    """The attempt failed. On a halted account (liquidation, or a position that appeared while halted) the next
    attempt is scheduled (services/retries.py); the alert, to the account's and the staff's live groups, says when."""
    intent.state = IntentState.FAILED
    intent.last_retcode = retcode
    intent.last_error = error[:255]
    intent.finished_at = now
    _save(intent, "state", "last_retcode", "last_error", "finished_at")
    retry: dict[str, Any] = {"attempt": intent.attempt, "retry_in_seconds": None, "retry_at": None}
    if retry_reason_stands(intent=intent):
        seconds = retry_delay_seconds(intent.attempt)
        at = retry_schedule(intent=intent, now=now, seconds=seconds)
        retry.update(retry_in_seconds=seconds, retry_at=at.isoformat())
    again = f"; attempt {intent.attempt + 1} in {retry['retry_in_seconds']} s" if retry["retry_at"] else ""
    _alert(
        intent,
        kind=AlertKind.CLOSE_FAILED,
        message=f"Closing #{intent.ticket} failed ({retcode}): {error}{again}"[:255],
        now=now,
        retcode=retcode,
        **retry,
    )
    return intent


def _unresolved(intent: CloseIntent, *, now: datetime, retcode: int | None, error: str) -> None:
    intent.state = IntentState.UNRESOLVED
    intent.last_retcode = retcode
    intent.last_error = error[:255]
    _save(intent, "state", "last_retcode", "last_error")
    _alert(
        intent,
        kind=AlertKind.CLOSE_UNRESOLVED,
        message=f"Close of #{intent.ticket}: outcome unknown ({error}); re-reading the terminal before any retry"[
            :255
        ],
        now=now,
        retcode=retcode,
    )


def filling_candidates(symbol_filling_flags: int) -> list[int]:
    """ORDER_FILLING_* to try, in order (REFERENCE §9): FOK if allowed, IOC if allowed, then RETURN."""
    candidates = []
    if symbol_filling_flags & SYMBOL_FILLING_FOK:
        candidates.append(mt5c.ORDER_FILLING_FOK)
    if symbol_filling_flags & SYMBOL_FILLING_IOC:
        candidates.append(mt5c.ORDER_FILLING_IOC)
    candidates.append(mt5c.ORDER_FILLING_RETURN)
    for mode in (mt5c.ORDER_FILLING_FOK, mt5c.ORDER_FILLING_IOC):
        if mode not in candidates:
            candidates.append(mode)  # flags can be wrong; INVALID_FILL moves on
    return candidates


def close_request_build(
    *, position: Position, price: Decimal, filling: int, deviation: int, comment: str
) -> TradeRequest:
    return TradeRequest(
        action=mt5c.TRADE_ACTION_DEAL,
        symbol=position.symbol,
        volume=position.volume,
        type=mt5c.ORDER_TYPE_SELL if position.side == Side.BUY else mt5c.ORDER_TYPE_BUY,
        price=price,
        deviation=deviation,
        magic=settings.MT5_PRODUCT_MAGIC,
        comment=comment[:31],
        type_filling=filling,
        type_time=mt5c.ORDER_TIME_GTC,
        position=position.ticket,
    )


def _drive_locked(intent: CloseIntent, *, gateway: Mt5Gateway) -> CloseIntent:
    cfg = guard_settings_for_account(account=intent.account)
    intent.attempts += 1
    _save(intent, "attempts")
    spec: SymbolSpec | None = None
    sends = unknown = 0
    while True:
        now = guard_now()
        # Observe first, always: after an unknown outcome nothing is sent before the terminal has been re-read.
        try:
            found = gateway.positions(ticket=intent.ticket)
        except GatewayError as exc:
            intent.last_error = f"positions not readable: {exc}"[:255]
            _save(intent, "last_error")
            if intent.state == IntentState.SENT:
                _unresolved(intent, now=now, retcode=intent.last_retcode, error=str(exc))
            return intent
        position = next((p for p in found if p.ticket == intent.ticket), None)
        if position is None:
            absence = absence_judge(intent=intent, gateway=gateway, now=now)
            if absence.proven:
                return _confirm(
                    intent,
                    now=now,
                    gateway=gateway,
                    evidence=absence.evidence,
                    deal=absence.deal,
                    closed_by=absence.closed_by,
                )
            # Not found, but not proven gone: send nothing, read again later (close_intent_drive schedules it).
            intent.last_error = f"position not found; {absence.evidence}"[:255]
            _save(intent, "absent_since", "last_error")
            if intent.state == IntentState.SENT:
                _unresolved(intent, now=now, retcode=intent.last_retcode, error=absence.evidence)
            return intent
        if intent.absent_since is not None:  # seen again: an earlier empty read was wrong
            intent.absent_since = None
            _save(intent, "absent_since")
        if sends >= MAX_SENDS_PER_RUN:
            return _fail(
                intent, now=now, retcode=intent.last_retcode, error=f"still open after {sends} orders"
            )
        try:
            spec = spec or gateway.symbol(position.symbol)
            tick = gateway.tick(position.symbol)
        except GatewayError as exc:
            intent.last_error = f"no price for {position.symbol}: {exc}"[:255]
            _save(intent, "last_error")
            return intent
        rejected = [int(m) for m in intent.fillings_tried]
        remaining = [m for m in filling_candidates(spec.filling_mode) if m not in rejected]
        if not remaining:
            return _fail(intent, now=now, retcode=INVALID_FILL, error="no filling mode accepted")
        filling = remaining[0]
        request = close_request_build(
            position=position,
            price=tick.bid if position.side == Side.BUY else tick.ask,
            filling=filling,
            deviation=cfg.close_deviation_points,
            comment=f"guard {intent.trigger}",
        )
        previous_state = intent.state
        intent.state = IntentState.SENT
        intent.order_sends += 1
        intent.sent_at = now
        intent.filling_mode = filling
        intent.symbol = position.symbol
        _save(intent, "state", "order_sends", "sent_at", "filling_mode", "symbol")  # write-ahead, committed
        sends += 1
        try:
            result = gateway.order_send(request)
        except GatewayCircuitOpen as exc:  # no call was made
            intent.state = previous_state
            intent.order_sends -= 1
            intent.last_error = str(exc)[:255]
            _save(intent, "state", "order_sends", "last_error")
            return intent
        except GatewayUnavailable as exc:  # order_send returned None with an IPC error: outcome unknown
            _alert(intent, kind=AlertKind.CLOSE_SENT, message=f"Close order for #{intent.ticket}: no answer ({exc})"[:255],
                   now=now, retcode=None, error=str(exc), filling=filling, price=str(request.price))  # fmt: skip
            _unresolved(intent, now=guard_now(), retcode=None, error=str(exc))
            unknown += 1
            if unknown > MAX_UNKNOWN_PER_RUN:
                return intent
            guard_sleep(PRICE_RETRY_BACKOFF_SECONDS)
            continue
        except GatewayError as exc:  # refused before reaching the server (bad request, trading disabled)
            _alert(intent, kind=AlertKind.CLOSE_SENT, message=f"Close order for #{intent.ticket} refused ({exc})"[:255],
                   now=now, retcode=None, error=str(exc), filling=filling)  # fmt: skip
            return _fail(intent, now=guard_now(), retcode=None, error=str(exc))
        retcode = result.retcode
        intent.last_retcode = retcode
        _save(intent, "last_retcode")
        _alert(
            intent,
            kind=AlertKind.CLOSE_SENT,
            message=f"Close order for #{intent.ticket}: {retcode} {result.comment}"[:255],
            now=now,
            retcode=retcode,
            comment=result.comment,
            filling=filling,
            price=str(request.price),
            volume=str(request.volume),
        )
        if retcode in CONFIRMING:
            if retcode == mt5c.TRADE_RETCODE_DONE:
                return _confirm(
                    intent,
                    now=guard_now(),
                    gateway=gateway,
                    evidence="done",
                    result_deal=result.deal,
                    price=result.price,
                )
            return _confirm(intent, now=guard_now(), gateway=gateway, evidence="position_closed")
        if retcode in PARTIAL:
            continue  # the remainder: re-read the position, send for what is left
        if retcode in PRICE_RETRY:
            intent.price_retries += 1
            _save(intent, "price_retries")
            if intent.price_retries > cfg.close_price_retries:
                return _fail(
                    intent,
                    now=guard_now(),
                    retcode=retcode,
                    error=f"{retcode} after {cfg.close_price_retries} retries",
                )
            guard_sleep(PRICE_RETRY_BACKOFF_SECONDS * intent.price_retries)
            continue
        if retcode == INVALID_FILL:
            intent.fillings_tried = [*rejected, filling]
            _save(intent, "fillings_tried")
            continue
        if retcode in AMBIGUOUS:
            _unresolved(intent, now=guard_now(), retcode=retcode, error=result.comment or str(retcode))
            unknown += 1
            if unknown > MAX_UNKNOWN_PER_RUN:
                return intent
            guard_sleep(PRICE_RETRY_BACKOFF_SECONDS)
            continue
        return _fail(intent, now=guard_now(), retcode=retcode, error=f"{retcode} {result.comment}".strip())


def close_intent_drive(
    *, intent: CloseIntent, gateway: Mt5Gateway, wait_seconds: float = LOCK_WAIT_SECONDS
) -> CloseIntent:
    """Take an intent as far as it can go now. Idempotent; returns the intent as stored afterwards."""
    with ticket_lock(
        account_id=intent.account_id, ticket=intent.ticket, wait_seconds=wait_seconds
    ) as acquired:
        intent.refresh_from_db()
        if not acquired or intent.is_final:
            return intent
        intent = _drive_locked(intent, gateway=gateway)
        now = guard_now()
        if not intent.is_final and (intent.retry_at is None or intent.retry_at <= now):
            # Outcome unknown, position not readable or absence not proven yet: read again one sync later (also
            # swept by the recovery, so a lost task costs at most its period). A read already scheduled for later
            # is kept: one follow-up per open intent, however many drivers come by.
            retry_schedule(intent=intent, now=now, seconds=second_read_after().total_seconds())
        return intent


def close_attempt_key(*, trigger_key: str, ticket: int, attempt: int) -> str:
    """Attempt 1 keeps the plain key (what callers and earlier intents use); later attempts add their number."""
    base = idempotency_key_for(trigger_key=trigger_key, ticket=ticket)
    return base if attempt == 1 else f"{base}:attempt-{attempt}"


def close_intent_retry(*, intent: CloseIntent, gateway: Mt5Gateway) -> CloseIntent | None:
    """Make the next attempt of a failed close, if it is due and its reason still stands, and drive it.

    Exactly once per failed attempt: the failed row is locked while its successor is created, and `retry_of` is
    unique. No attempt starts while another close of the same position is pending, sent or unresolved (the due
    time stays; the next driver tries again). Returns the new attempt, or None when nothing was due."""
    now = guard_now()
    with transaction.atomic():
        failed = CloseIntent.objects.select_for_update().filter(pk=intent.pk).first()
        if failed is None or failed.state != IntentState.FAILED or hasattr(failed, "retried_by"):
            return None
        if failed.retry_at is not None and failed.retry_at > now:
            return None
        if not retry_reason_stands(intent=failed):
            failed.retry_at = None
            _save(failed, "retry_at")
            return None
        if CloseIntent.objects.filter(
            account_id=failed.account_id, ticket=failed.ticket, state__in=OPEN_INTENT_STATES
        ).exists():
            return None
        attempt = failed.attempt + 1
        try:
            with transaction.atomic():
                successor = CloseIntent.objects.create(
                    idempotency_key=close_attempt_key(
                        trigger_key=failed.trigger_key, ticket=failed.ticket, attempt=attempt
                    ),
                    account_id=failed.account_id,
                    ticket=failed.ticket,
                    symbol=failed.symbol,
                    trigger=failed.trigger,
                    trigger_key=failed.trigger_key,
                    actor_id=failed.actor_id,
                    attempt=attempt,
                    retry_of=failed,
                )
        except IntegrityError:  # another driver made this attempt
            return None
        failed.retry_at = None
        _save(failed, "retry_at")
    return close_intent_drive(intent=successor, gateway=gateway)


def close_intent_latest(intent: CloseIntent) -> CloseIntent:
    """The newest attempt of the chain that starts at `intent`."""
    while True:
        successor = CloseIntent.objects.filter(retry_of_id=intent.pk).first()
        if successor is None:
            return intent
        intent = successor


def position_close(
    *,
    account: TradingAccount,
    ticket: int,
    trigger_key: str,
    gateway: Mt5Gateway,
    actor: User | None = None,
    trigger: str = CloseTrigger.OPERATOR,
    symbol: str = "",
) -> CloseIntent:
    """Close one position exactly once for this trigger. A repeated call with the same trigger key returns the same
    intent (finished, or driven further if it is still open)."""
    intent, _ = close_intent_get_or_create(
        account=account, ticket=ticket, trigger=trigger, trigger_key=trigger_key, actor=actor, symbol=symbol
    )
    if intent.is_final:
        return intent
    return close_intent_drive(intent=intent, gateway=gateway)


def positions_close_all(
    *,
    account: TradingAccount,
    trigger_key: str,
    gateway: Mt5Gateway,
    trigger: str = CloseTrigger.OPERATOR,
    actor: User | None = None,
    tickets: Sequence[int] | None = None,
    symbol: str | None = None,
) -> list[CloseOutcome]:
    """Close every open position (or the given tickets / one symbol's). Each position is isolated: one failure never
    stops the others, and the result lists every position's outcome. Intents of this trigger that are still open
    (e.g. unresolved after a crash) are driven too. Raises GatewayError only when the positions cannot be read."""
    if tickets is None:
        positions = gateway.positions(symbol=symbol) if symbol else gateway.positions()
        wanted = {p.ticket: p.symbol for p in positions}
    else:
        wanted = {int(t): "" for t in tickets}
    for intent in CloseIntent.objects.filter(
        account_id=account.pk, trigger_key=trigger_key, state__in=OPEN_INTENT_STATES
    ).only("ticket", "symbol"):
        wanted.setdefault(intent.ticket, intent.symbol)
    intents = []
    for ticket, sym in sorted(wanted.items()):
        try:
            intents.append(
                close_intent_get_or_create(
                    account=account,
                    ticket=ticket,
                    trigger=trigger,
                    trigger_key=trigger_key,
                    actor=actor,
                    symbol=sym,
                )[0]
            )
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            logger.exception("close intent for #%s not stored", ticket)
            intents.append(CloseIntent(ticket=ticket, state=IntentState.FAILED, last_error=str(exc)[:255]))
    outcomes = []
    for intent in intents:
        if intent.pk is None:
            outcomes.append(
                CloseOutcome(ticket=intent.ticket, state=IntentState.FAILED, error=intent.last_error)
            )
            continue
        try:
            intent = close_intent_latest(intent)
            if not intent.is_final:
                intent = close_intent_drive(intent=intent, gateway=gateway)
            outcomes.append(
                CloseOutcome(
                    ticket=intent.ticket,
                    state=intent.state,
                    retcode=intent.last_retcode,
                    error=intent.last_error if intent.state != IntentState.CONFIRMED else "",
                    intent_id=intent.pk,
                )
            )
        except SoftTimeLimitExceeded:
            raise  # the worker is out of time: stop here; intents left open are completed by the recovery
        except Exception as exc:  # isolate: the next position still gets its close
            logger.exception("closing #%s failed unexpectedly", intent.ticket)
            outcomes.append(
                CloseOutcome(ticket=intent.ticket, state=intent.state, error=str(exc), intent_id=intent.pk)
            )
    return outcomes


def close_intent_follow_up(*, intent: CloseIntent, gateway: Mt5Gateway) -> CloseIntent | None:
    """What is due for one intent: a failed one gets its next attempt (if due and its reason stands), an open one
    is driven again (re-read first). Run by the retry task, the recovery and the scenario runner."""
    intent.refresh_from_db()
    if intent.state == IntentState.FAILED:
        return close_intent_retry(intent=intent, gateway=gateway)
    if intent.state in OPEN_INTENT_STATES:
        return close_intent_drive(intent=intent, gateway=gateway, wait_seconds=0.0)
    return None


def close_intents_complete(*, gateway_for: Any, older_than_seconds: float = 0.0) -> list[CloseOutcome]:
    """Recovery: drive every intent left pending/sent/unresolved (a killed worker, a terminal that was down) and
    make every retry whose due time has passed (a lost task). `gateway_for(account)` gives the account's gateway.
    Intents being driven right now are skipped (lock held)."""
    now = guard_now()
    outcomes = []
    due = (
        CloseIntent.objects.filter(
            Q(state__in=OPEN_INTENT_STATES) | Q(state=IntentState.FAILED, retry_at__lte=now)
        )
        .select_related("account")
        .order_by("pk")
    )
    for intent in due:
        if (
            intent.state != IntentState.FAILED
            and older_than_seconds
            and (now - intent.updated_at).total_seconds() < older_than_seconds
            and (intent.retry_at is None or intent.retry_at > now)
        ):
            continue
        try:
            driven = close_intent_follow_up(intent=intent, gateway=gateway_for(intent.account))
            if driven is None:
                continue
            outcomes.append(
                CloseOutcome(
                    ticket=driven.ticket, state=driven.state, retcode=driven.last_retcode, intent_id=driven.pk
                )
            )
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            logger.exception("recovering close intent %s failed", intent.pk)
            outcomes.append(
                CloseOutcome(ticket=intent.ticket, state=intent.state, error=str(exc), intent_id=intent.pk)
            )
    return outcomes
