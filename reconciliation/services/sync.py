"""account_sync: one account's terminal reading → snapshot, live positions, reconciliation events.

Order of work (all terminal calls happen before the database transaction, so no transaction waits on a terminal):
1. read account info, positions and the deals since the previous sync through the gateway; any GatewayError here
   makes the sync *failed* and nothing is concluded from it (a failed read is never "no positions");
2. build the symbol table (cached), reconcile with the pure matcher, look up close reasons still pending;
3. in one transaction: the snapshot, upsert/delete live positions, bot-trade bookkeeping, events, the run record;
4. after commit: live updates (core.realtime.broadcast), then guards. A failed sync also tells the guards (with no
   snapshot), so they record that they are waiting for a fresh one.

The number of queries is constant in the number of positions (bulk statements only). A steady sync issues 9: bot
trades, snapshot (constraint check, insert, account update), positions upsert and delete, events read and touch,
the run record; +1 when events open, +1 when bot trades change; plus what guards add.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount
from accounts.services import account_snapshot_record
from core.readcache import account_reads_invalidate
from core.realtime import STAFF_GROUP, account_group, broadcast
from guards.services import account_guards_evaluate
from integrations.mt5.errors import GatewayCircuitOpen, GatewayError, GatewayUnavailable
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.types import AccountState, Deal, Position
from reconciliation import matching
from reconciliation.conf import setting
from reconciliation.models import (
    AccountSync,
    BotTrade,
    BotTradeStatus,
    CloseReason,
    LivePosition,
)
from reconciliation.services.events import Condition, EventChanges, events_apply
from reconciliation.symbols import SymbolNotDescribed, symbol_table_for_account

logger = logging.getLogger(__name__)

_POSITION_TYPE = {"buy": matching.POSITION_TYPE_BUY, "sell": matching.POSITION_TYPE_SELL}
_LIVE_UPDATE_FIELDS = [
    "symbol",
    "canonical_symbol",
    "side",
    "volume",
    "price_open",
    "price_current",
    "sl",
    "tp",
    "profit",
    "swap",
    "magic",
    "comment",
    "opened_at",
    "opened_at_server_epoch",
    "last_seen_at",
    "bot_trade",
    "match_method",
]
_BOT_TRADE_SYNC_FIELDS = ["matched_ticket", "closed_by", "missing_since", "close_lookups", "updated_at"]


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
    guards_error: str = ""
    live_positions: Sequence[LivePosition] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class _Reading:
    state: AccountState
    positions: Sequence[Position]
    deals: Sequence[Deal]


def _deals_cursor_key(account_id: int) -> str:
    return f"recon:deals-cursor:{account_id}"


def _terminal_read(*, account: TradingAccount, gateway: Mt5Gateway, now: datetime) -> _Reading:
    """Everything the sync needs from the terminal. Deals: since the previous successful sync minus an overlap
    (history can lag), or a fixed look-back on the first sync; until a little past now (server clock estimates)."""
    cursor = cache.get(_deals_cursor_key(account.pk))
    if cursor is None:
        since = now - timedelta(seconds=setting("RECONCILIATION_DEALS_FIRST_LOOKBACK_SECONDS"))
    else:
        previous = datetime.fromtimestamp(min(float(cursor), now.timestamp()), tz=now.tzinfo)
        since = previous - timedelta(seconds=setting("RECONCILIATION_DEALS_OVERLAP_SECONDS"))
    state = gateway.account()
    positions = gateway.positions()
    deals = gateway.deals(since=since, until=now + timedelta(hours=1))
    return _Reading(state=state, positions=positions, deals=deals)


def _matcher_position(position: Position) -> matching.LivePosition:
    return matching.LivePosition(
        ticket=position.ticket,
        time=position.time_epoch,
        type=_POSITION_TYPE[position.side],
        magic=position.magic,
        volume=position.volume,
        price_open=position.price_open,
        sl=position.sl,
        tp=position.tp,
        symbol=position.symbol,
        comment=position.comment,
    )


def _matcher_deal(deal: Deal) -> matching.Deal:
    return matching.Deal(
        ticket=deal.ticket,
        order=deal.order,
        time=deal.time_epoch,
        type=deal.type,
        entry=deal.entry,
        magic=deal.magic,
        position_id=deal.position_id,
        reason=deal.reason,
        volume=deal.volume,
        price=deal.price,
        symbol=deal.symbol,
        comment=deal.comment,
    )


def _matcher_bot_trade(trade: BotTrade) -> matching.BotTrade:
    return matching.BotTrade(
        id=str(trade.pk),
        symbol=trade.symbol,
        side=trade.side,  # type: ignore[arg-type]
        volume=trade.volume,
        entry_price=trade.entry_price,
        sl=trade.sl,
        tp=trade.tp,
        ticket=trade.effective_ticket,
        magic=trade.magic,
        tag=trade.tag or None,
    )


def _tolerances() -> matching.Tolerances:
    values = setting("RECONCILIATION_TOLERANCES")
    return matching.Tolerances(**{key: Decimal(str(value)) for key, value in values.items()})


def _json(value: Any) -> Any:
    """Decimals as plain strings without trailing zeros, whichever side (database or terminal) they came from."""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


class _CloseReasons:
    """Close reasons of missing positions, retried across syncs without blocking: a missing bot trade whose ticket
    is known but whose closing deal is not in the history yet stays `pending`; each later sync asks the terminal
    once more (deals_for_position), and only after RECONCILIATION_CLOSE_REASON_WAIT_SECONDS *and*
    RECONCILIATION_CLOSE_REASON_MIN_LOOKUPS look-ups does it settle on `unknown`."""

    def __init__(self, *, gateway: Mt5Gateway, now: datetime) -> None:
        self.gateway = gateway
        self.now = now
        self.budget = setting("RECONCILIATION_CLOSE_REASON_LOOKUPS_PER_SYNC")
        self.wait = timedelta(seconds=setting("RECONCILIATION_CLOSE_REASON_WAIT_SECONDS"))
        self.min_lookups = setting("RECONCILIATION_CLOSE_REASON_MIN_LOOKUPS")
        self.link_failed = False

    def settle(self, trade: BotTrade, from_deals: str) -> bool:
        """Update trade.closed_by & co; True when the trade row changed."""
        if trade.closed_by and trade.closed_by != CloseReason.PENDING:
            return False
        before = (trade.closed_by, trade.missing_since, trade.close_lookups)
        ticket = trade.effective_ticket
        if from_deals != "unknown":
            trade.closed_by = from_deals
        elif ticket is None:
            trade.closed_by = CloseReason.UNKNOWN
        else:
            if not trade.closed_by:
                trade.closed_by, trade.close_lookups = CloseReason.PENDING, 0
                trade.missing_since = trade.missing_since or self.now
            self._look_up(trade, ticket)
        return before != (trade.closed_by, trade.missing_since, trade.close_lookups)

    def _look_up(self, trade: BotTrade, ticket: int) -> None:
        if self.budget <= 0 or self.link_failed:
            return
        self.budget -= 1
        try:
            deals = self.gateway.deals_for_position(position_id=ticket)
        except GatewayError as exc:
            # No answer is not an answer: stay pending, do not count the look-up, ask no more this sync.
            logger.info("close reason of ticket %s not looked up: %s", ticket, exc)
            self.link_failed = True
            return
        reason = matching.close_reason(ticket=ticket, deals=[_matcher_deal(deal) for deal in deals])
        trade.close_lookups += 1
        if reason != "unknown":
            trade.closed_by = reason
        elif (
            trade.close_lookups >= self.min_lookups
            and self.now - (trade.missing_since or self.now) >= self.wait
        ):
            trade.closed_by = CloseReason.UNKNOWN


def _fingerprint(
    account_id: int, kind: str, *, bot_trade_id: int | None = None, ticket: int | None = None
) -> str:
    return (
        f"{account_id}:{kind}:bt{bot_trade_id}"
        if bot_trade_id is not None
        else f"{account_id}:{kind}:t{ticket}"
    )


@dataclass
class _Outcome:
    conditions: list[Condition]
    changed_trades: dict[int, BotTrade]
    position_links: dict[int, tuple[int, str]]  # ticket -> (bot trade id, method)
    canonical: dict[str, str]
    matched: int
    unmatched: int
    missing: int


def _reconcile(
    *,
    account: TradingAccount,
    gateway: Mt5Gateway,
    reading: _Reading,
    trades: list[BotTrade],
    now: datetime,
) -> _Outcome:
    tickets = {position.ticket for position in reading.positions}
    # A trade whose own position (found by an earlier sync) is gone is missing; it is not re-matched to another.
    gone_sticky = [
        t for t in trades if t.ticket is None and t.matched_ticket and t.matched_ticket not in tickets
    ]
    gone_ids = {t.pk for t in gone_sticky}
    candidates = [t for t in trades if t.pk not in gone_ids]
    table = symbol_table_for_account(
        account=account,
        gateway=gateway,
        terminal_names=(position.symbol for position in reading.positions),
        canonical_names=(t.symbol for t in candidates),
    )
    deals = [_matcher_deal(deal) for deal in reading.deals]
    result = matching.reconcile(
        symbols=table,
        bot_trades=[_matcher_bot_trade(t) for t in candidates],
        positions=[_matcher_position(p) for p in reading.positions],
        deals=deals,
        tolerances=_tolerances(),
    )
    by_id = {t.pk: t for t in trades}
    changed: dict[int, BotTrade] = {}
    conditions: list[Condition] = []
    links: dict[int, tuple[int, str]] = {}

    for match in result.matches:
        trade = by_id[int(match.bot_trade_id)]
        # A ticket match on the ticket an earlier sync found (not one the bot gave) is that earlier pairing kept.
        kept = match.method == "ticket" and trade.ticket is None
        links[match.ticket] = (trade.pk, "kept" if kept else match.method)
        if trade.matched_ticket != match.ticket or trade.closed_by or trade.missing_since:
            trade.matched_ticket, trade.closed_by, trade.missing_since, trade.close_lookups = (
                match.ticket,
                "",
                None,
                0,
            )
            changed[trade.pk] = trade
        for divergence in match.divergences:
            conditions.append(
                Condition(
                    fingerprint=_fingerprint(account.pk, divergence.kind, bot_trade_id=trade.pk),
                    kind=divergence.kind,
                    bot_trade_id=trade.pk,
                    ticket=match.ticket,
                    symbol=trade.symbol,
                    detail={key: _json(value) for key, value in divergence.detail.items()},
                )
            )

    for unmatched in result.unmatched_positions:
        conditions.append(
            Condition(
                fingerprint=_fingerprint(account.pk, "unmatched_position", ticket=unmatched.ticket),
                kind="unmatched_position",
                bot_trade_id=None,
                ticket=unmatched.ticket,
                symbol=unmatched.symbol,
                detail={},
            )
        )

    grace = timedelta(seconds=setting("RECONCILIATION_MISSING_GRACE_SECONDS"))
    reasons = _CloseReasons(gateway=gateway, now=now)
    missing = [(by_id[int(m.bot_trade_id)], m.closed_by) for m in result.missing_positions]
    missing += [(t, matching.close_reason(ticket=t.matched_ticket, deals=deals)) for t in gone_sticky]
    reported = 0
    for trade, from_deals in missing:
        if trade.matched_ticket is None:
            # Never matched yet: the order may not have filled. Reported once it has been unmatched for the grace
            # period, counted on the syncs' clock (`now`, virtual in scenarios), not the registration time.
            if trade.missing_since is None:
                trade.missing_since = now
                changed[trade.pk] = trade
            if now - trade.missing_since < grace:
                continue
        reported += 1
        if reasons.settle(trade, from_deals):
            changed[trade.pk] = trade
        conditions.append(
            Condition(
                fingerprint=_fingerprint(account.pk, "missing_position", bot_trade_id=trade.pk),
                kind="missing_position",
                bot_trade_id=trade.pk,
                ticket=trade.effective_ticket,
                symbol=trade.symbol,
                detail={"closed_by": trade.closed_by, "signal_id": trade.signal_id, "leg": trade.leg},
            )
        )
    canonical = {name: table[name].canonical for name in table}
    return _Outcome(
        conditions=conditions,
        changed_trades=changed,
        position_links=links,
        canonical=canonical,
        matched=len(result.matches),
        unmatched=len(result.unmatched_positions),
        missing=reported,
    )


def _unmatched_detail(position: Position) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "side": str(position.side),
        "volume": str(position.volume),
        "price_open": str(position.price_open),
        "magic": position.magic,
        "comment": position.comment,
    }


# Every column but the primary key, in insert order; the conflict target and the columns a conflict updates.
_UPSERT_FIELDS = [f for f in LivePosition._meta.concrete_fields if not f.primary_key]
_UPSERT_ATTNAMES = [f.attname for f in _UPSERT_FIELDS]
_UPSERT_DECIMALS = [i for i, f in enumerate(_UPSERT_FIELDS) if isinstance(f, models.DecimalField)]
_UPSERT_CONFLICT = ", ".join(LivePosition._meta.get_field(name).column for name in ("account", "ticket"))
_UPSERT_UPDATES = ", ".join(
    f"{column} = EXCLUDED.{column}"
    for column in (LivePosition._meta.get_field(n).column for n in _LIVE_UPDATE_FIELDS)
)


@functools.cache
def _upsert_sql(count: int) -> str:
    columns = ", ".join(f.column for f in _UPSERT_FIELDS)
    row = "(" + ", ".join(["%s"] * len(_UPSERT_FIELDS)) + ")"
    return (
        f"INSERT INTO {LivePosition._meta.db_table} ({columns}) VALUES {', '.join([row] * count)} "  # noqa: S608 - names from the model, values as parameters
        f"ON CONFLICT ({_UPSERT_CONFLICT}) DO UPDATE SET {_UPSERT_UPDATES} "
        f"RETURNING {LivePosition._meta.pk.column}, ticket"
    )


def _positions_upsert(rows: list[LivePosition]) -> None:
    """What `bulk_create(update_conflicts=True, unique_fields=[account, ticket], update_fields=_LIVE_UPDATE_FIELDS)`
    sends, as one statement whose text is built once per row count. The ORM compiled and prepared every field of
    every row on every sync (cProfile: _positions_store 8.7 -> 4.0 ms per sync); here the values go to the driver as
    they are: the gateway already typed them (Decimal, aware UTC datetimes, int, str), and for these fields on
    PostgreSQL the ORM's preparation only checked that decimals are finite, which is kept. Each row gets its
    primary key back, as bulk_create gives it."""
    params: list[Any] = []
    for row in rows:
        values = [getattr(row, name) for name in _UPSERT_ATTNAMES]
        for index in _UPSERT_DECIMALS:  # the one check the ORM's preparation made: a finite number
            if values[index] is not None and not values[index].is_finite():
                raise ValidationError({_UPSERT_ATTNAMES[index]: f"{values[index]} is not a finite number"})
        params.extend(values)
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(len(rows)), params)
        ids = {ticket: pk for pk, ticket in cursor.fetchall()}
    for row in rows:
        row.pk = ids[row.ticket]
        row._state.adding = False
        row._state.db = connection.alias


def _positions_store(
    *, account: TradingAccount, positions: Sequence[Position], outcome: _Outcome, now: datetime
) -> list[LivePosition]:
    """Upsert the open positions and delete the ones no longer open: two statements whatever the count.
    Terminal data is already typed and checked by the gateway, so rows are not full_clean()ed one by one."""
    rows = []
    for position in positions:
        bot_trade_id, method = outcome.position_links.get(position.ticket, (None, ""))
        rows.append(
            LivePosition(
                account=account,
                ticket=position.ticket,
                symbol=position.symbol,
                canonical_symbol=outcome.canonical.get(position.symbol, position.symbol.upper()),
                side=str(position.side),
                volume=position.volume,
                price_open=position.price_open,
                price_current=position.price_current,
                sl=position.sl,
                tp=position.tp,
                profit=position.profit,
                swap=position.swap,
                magic=position.magic,
                comment=position.comment[:64],
                opened_at=position.time,
                opened_at_server_epoch=position.time_epoch,
                first_seen_at=now,
                last_seen_at=now,
                bot_trade_id=bot_trade_id,
                match_method=method,
            )
        )
    if rows:
        _positions_upsert(rows)
    LivePosition.objects.filter(account=account).exclude(ticket__in=[row.ticket for row in rows]).delete()
    return rows


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
    # A link failure is worth one quick retry; an open circuit is not (it refuses calls until its reset time).
    retryable = isinstance(exc, GatewayUnavailable) and not isinstance(exc, GatewayCircuitOpen)
    message = str(exc)[:500]
    logger.warning("sync of account %s failed: %s: %s", account.pk, type(exc).__name__, message)
    try:
        AccountSync.objects.create(
            account=account,
            cycle_id=cycle_id,
            started_at=started_at,
            finished_at=started_at + timedelta(seconds=time.monotonic() - clock),
            duration_ms=int((time.monotonic() - clock) * 1000),
            ok=False,
            error_class=type(exc).__name__,
            error_message=message,
        )
    except Exception:
        logger.exception("the failed sync of account %s could not be recorded", account.pk)
    _sync_broadcast(account_id=account.pk, event="sync.failed")
    guards_error = _guards_evaluate(
        account=account, snapshot=None, positions=(), gateway=None, now=started_at
    )
    return AccountSyncResult(
        account_id=account.pk,
        ok=False,
        error=message,
        error_class=type(exc).__name__,
        retryable=retryable,
        guards_error=guards_error,
    )


def _sync_broadcast(*, account_id: int, event: str) -> None:
    # The sync committed (or was recorded failed): the account's cached API reads are stale from now on.
    account_reads_invalidate(account_id=account_id)
    broadcast(account_group(account_id), event, account_id=account_id)
    broadcast(STAFF_GROUP, event, account_id=account_id)


def _event_broadcasts(*, account_id: int, changes: EventChanges) -> None:
    for verb, events in (("opened", changes.opened), ("reopened", changes.reopened), ("gone", changes.gone)):
        for event in events:
            for group in (account_group(account_id), STAFF_GROUP):
                broadcast(group, f"event.{verb}", account_id=account_id, event_id=event.pk, kind=event.kind)


def _guards_evaluate(
    *,
    account: TradingAccount,
    snapshot: AccountSnapshot | None,
    positions: Sequence[LivePosition],
    gateway: Mt5Gateway | None,
    now: datetime,
) -> str:
    """Guards run after the sync has committed, on its fresh snapshot and stored positions. A guard failure never
    undoes or fails the sync: it is logged with its traceback and reported in the result.

    A failed sync hands them no snapshot, no positions and no gateway: they record once that they wait for a fresh
    snapshot (never read as a reading: no level, count or peak moves) and make no terminal call."""
    try:
        # Its own transaction (a savepoint when the caller already holds one), so a failing guard rolls back
        # only its own writes.
        with transaction.atomic():
            account_guards_evaluate(
                account=account, snapshot=snapshot, positions=positions, gateway=gateway, now=now
            )
    except Exception as exc:
        logger.exception("guards of account %s failed after its sync", account.pk)
        return f"{type(exc).__name__}: {exc}"[:500]
    return ""


def account_sync(
    *, account: TradingAccount, gateway: Mt5Gateway, now: datetime | None = None, cycle_id: int | None = None
) -> AccountSyncResult:
    """Sync one account. Never raises for terminal faults or bad terminal data: the run is recorded as failed and
    the result says why (`retryable` for link failures). Unexpected errors are recorded, then re-raised."""
    now = now or timezone.now()
    clock = time.monotonic()
    try:
        reading = _terminal_read(account=account, gateway=gateway, now=now)
        trades = list(
            BotTrade.objects.filter(account=account, status=BotTradeStatus.OPEN).order_by("created_at", "pk")
        )
        outcome = _reconcile(account=account, gateway=gateway, reading=reading, trades=trades, now=now)
    except (GatewayError, SymbolNotDescribed, matching.ReconciliationInputError) as exc:
        return _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
    except Exception as exc:
        _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
        raise

    unmatched_details = {p.ticket: _unmatched_detail(p) for p in reading.positions}
    for condition in outcome.conditions:
        if condition.kind == "unmatched_position" and condition.ticket in unmatched_details:
            condition.detail.update(unmatched_details[condition.ticket])

    try:
        # One transaction for every write of the sync: one commit (one WAL flush) instead of one per statement,
        # which is what bounds the sync rate on a busy database.
        with transaction.atomic():
            snapshot = account_snapshot_record(account=account, state=reading.state, taken_at=now)
            live = _positions_store(account=account, positions=reading.positions, outcome=outcome, now=now)
            if outcome.changed_trades:
                for trade in outcome.changed_trades.values():
                    trade.updated_at = now
                BotTrade.objects.bulk_update(list(outcome.changed_trades.values()), _BOT_TRADE_SYNC_FIELDS)
            changes = events_apply(account=account, conditions=outcome.conditions, now=now)
            duration = time.monotonic() - clock
            AccountSync.objects.create(
                account=account,
                cycle_id=cycle_id,
                started_at=now,
                finished_at=now + timedelta(seconds=duration),
                duration_ms=int(duration * 1000),
                ok=True,
                positions=len(reading.positions),
                matched=outcome.matched,
                unmatched=outcome.unmatched,
                missing=outcome.missing,
                events_opened=len(changes.opened) + len(changes.reopened),
                events_gone=len(changes.gone),
            )
            _event_broadcasts(account_id=account.pk, changes=changes)
            _sync_broadcast(account_id=account.pk, event="sync.completed")
            cursor_key, cursor = _deals_cursor_key(account.pk), now.timestamp()
            transaction.on_commit(lambda: cache.set(cursor_key, cursor, timeout=7 * 24 * 3600))
    except Exception as exc:
        _sync_failed(account=account, started_at=now, clock=clock, exc=exc, cycle_id=cycle_id)
        raise

    guards_error = _guards_evaluate(
        account=account, snapshot=snapshot, positions=live, gateway=gateway, now=now
    )
    return AccountSyncResult(
        account_id=account.pk,
        ok=True,
        snapshot=snapshot,
        positions=len(live),
        matched=outcome.matched,
        unmatched=outcome.unmatched,
        missing=outcome.missing,
        events_opened=len(changes.opened) + len(changes.reopened),
        events_closed=len(changes.gone),
        guards_error=guards_error,
        live_positions=live,
    )
