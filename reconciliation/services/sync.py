"""Reconciliation of one account reading: live positions, bot-trade bookkeeping and events for support.

Called by the account-sync pipeline (`pipeline.services.account_sync`), which takes the terminal reading once and
hands it here. Two steps, so that no transaction waits on a terminal:
1. `reconciliation_prepare` (no transaction): the open bot trades, the symbol table (cached; symbol_info only for
   names never seen on the server), the pure matcher, close reasons still pending (deals_for_position, bounded).
   Raises SymbolNotDescribed / ReconciliationInputError / GatewayError: the pipeline records the failure and goes on
   with the snapshot and the guards.
2. `reconciliation_store` (inside the pipeline's transaction): upsert/delete live positions, bot-trade bookkeeping,
   events (opened / refreshed / gone), their live updates after commit.

The number of queries is constant in the number of positions (bulk statements only): bot trades; positions upsert
(with the delete), events read and touch (the touch batched into the sync's last statement); +1 when events open,
+1 when bot trades change.
Netting accounts (one position per symbol; the matcher groups bot trades by symbol) add their NetMatch rows: a read
and a touch, + writes when a group changes (services/net_matches.py); a hedging account never touches them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection, models

from accounts.models import MarginMode, TradingAccount
from core.db import PreparedQuery, WriteBatch, fetch_together
from core.realtime import STAFF_GROUP, account_group, broadcast_groups
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.reading import AccountReading
from integrations.mt5.types import AccountState, Deal, Position
from reconciliation import matching
from reconciliation.conf import setting
from reconciliation.models import (
    BotTrade,
    BotTradeStatus,
    CloseReason,
    LivePosition,
)
from reconciliation.services.events import Condition, EventChanges, events_apply
from reconciliation.services.net_matches import divergence_detail, net_matches_store
from reconciliation.symbols import symbol_table_for_account

logger = logging.getLogger(__name__)

# DEAL_TYPE_BALANCE, DEAL_TYPE_CREDIT, DEAL_TYPE_BONUS (shared/spec/guards.md "Balance operations").
BALANCE_OPERATION_TYPES = frozenset({2, 3, 6})
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
_BOT_TRADE_SYNC_FIELDS = [
    "matched_ticket",
    "net_match",
    "closed_by",
    "missing_since",
    "close_lookups",
    "updated_at",
]


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
    # The ticket the bot gave, or else the one an earlier sync paired the trade with: either way the matcher's
    # ticket rule holds (matched by that ticket, or missing), so a closed position is never re-paired with another.
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

    def settle(self, trade: BotTrade, from_deals: str, *, ticket: int | None) -> bool:
        """Update trade.closed_by & co (`ticket`: the position whose deals tell); True when the trade row changed."""
        if trade.closed_by and trade.closed_by != CloseReason.PENDING:
            return False
        before = (trade.closed_by, trade.missing_since, trade.close_lookups)
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
    account_id: int,
    kind: str,
    *,
    bot_trade_id: int | None = None,
    ticket: int | None = None,
    net: bool = False,
) -> str:
    if bot_trade_id is not None:
        return f"{account_id}:{kind}:bt{bot_trade_id}"
    # A net match's divergence belongs to the symbol's position, whichever bot trades its group holds today.
    return f"{account_id}:{kind}:{'net' if net else 't'}{ticket}"


@dataclass
class _Outcome:
    conditions: list[Condition]
    changed_trades: dict[int, BotTrade]
    position_links: dict[int, tuple[int | None, str]]  # ticket -> (bot trade id, method)
    canonical: dict[str, str]
    matched: int
    unmatched: int
    missing: int
    netting: bool = False  # this reading's margin mode
    was_netting: bool = (
        False  # the account's, as stored before this reading (NetMatch rows may need clearing)
    )
    net_matches: tuple[matching.NetMatch, ...] = ()


def _is_netting(state: AccountState) -> bool:
    return MarginMode.is_netting(str(state.margin_mode))


def _not_missing(trade: BotTrade, changed: dict[int, BotTrade], *, ticket: int | None) -> None:
    """The trade is accounted for (matched, or in a group that nets to zero): clear any missing state."""
    moved = ticket is not None and trade.matched_ticket != ticket
    if moved or trade.closed_by or trade.missing_since:
        if ticket is not None:
            trade.matched_ticket = ticket
        trade.closed_by, trade.missing_since, trade.close_lookups = "", None, 0
        changed[trade.pk] = trade


def _net_conditions(
    *, account: TradingAccount, net: matching.NetMatch, members: list[BotTrade]
) -> list[Condition]:
    labels = [f"{trade.signal_id}#{trade.leg}" for trade in members]
    return [
        Condition(
            fingerprint=_fingerprint(account.pk, divergence.kind, ticket=net.ticket, net=True),
            kind=divergence.kind,
            bot_trade_id=None,
            ticket=net.ticket,
            symbol=net.symbol,
            detail={**divergence_detail(divergence), "bot_trades": labels},
        )
        for divergence in net.divergences
    ]


def _reconcile(
    *,
    account: TradingAccount,
    gateway: Mt5Gateway,
    reading: AccountReading,
    trades: list[BotTrade],
    now: datetime,
) -> _Outcome:
    netting = _is_netting(reading.state)
    table = symbol_table_for_account(
        account=account,
        gateway=gateway,
        terminal_names=(position.symbol for position in reading.positions),
        canonical_names=(t.symbol for t in trades),
    )
    # Balance operations (deposits, credit, bonus) are never part of a position's life, nor its P/L.
    deals = [_matcher_deal(deal) for deal in reading.deals or () if deal.type not in BALANCE_OPERATION_TYPES]
    result = matching.reconcile(
        symbols=table,
        bot_trades=[_matcher_bot_trade(t) for t in trades],
        positions=[_matcher_position(p) for p in reading.positions],
        deals=deals,
        tolerances=_tolerances(),
        margin_mode="netting" if netting else "hedging",
    )
    by_id = {t.pk: t for t in trades}
    changed: dict[int, BotTrade] = {}
    conditions: list[Condition] = []
    links: dict[int, tuple[int | None, str]] = {}

    for match in result.matches:
        trade = by_id[int(match.bot_trade_id)]
        # A ticket match on the ticket an earlier sync found (not one the bot gave) is that earlier pairing kept.
        kept = match.method == "ticket" and trade.ticket is None
        links[match.ticket] = (trade.pk, "kept" if kept else match.method)
        _not_missing(trade, changed, ticket=match.ticket)
        for divergence in match.divergences:
            conditions.append(
                Condition(
                    fingerprint=_fingerprint(account.pk, divergence.kind, bot_trade_id=trade.pk),
                    kind=divergence.kind,
                    bot_trade_id=trade.pk,
                    ticket=match.ticket,
                    symbol=trade.symbol,
                    detail=divergence_detail(divergence),
                )
            )

    for net in result.net_matches:
        members = [by_id[int(bot_trade_id)] for bot_trade_id in net.bot_trade_ids]
        links[net.ticket] = (None, "net")
        for trade in members:
            _not_missing(trade, changed, ticket=net.ticket)
        conditions.extend(_net_conditions(account=account, net=net, members=members))
    for group in result.zero_net_groups:
        for bot_trade_id in group.bot_trade_ids:  # they expect no position: neither matched nor missing
            _not_missing(by_id[int(bot_trade_id)], changed, ticket=None)

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
    reported = 0
    for missing in result.missing_positions:
        trade = by_id[int(missing.bot_trade_id)]
        # Netting: the group's trades close with the symbol's position they were last matched to, so that
        # position's deals tell why; the bot's own ticket (an order that added to it) may tell nothing.
        ticket = (trade.matched_ticket or trade.ticket) if netting else trade.effective_ticket
        from_deals = (
            matching.close_reason(ticket=ticket, deals=deals)
            if netting and ticket != trade.ticket
            else missing.closed_by
        )
        if trade.matched_ticket is None:
            # Never matched yet: the order may not have filled. Reported once it has been unmatched for the grace
            # period, counted on the syncs' clock (`now`, virtual in scenarios), not the registration time.
            if trade.missing_since is None:
                trade.missing_since = now
                changed[trade.pk] = trade
            if now - trade.missing_since < grace:
                continue
        reported += 1
        if reasons.settle(trade, from_deals, ticket=ticket):
            changed[trade.pk] = trade
        conditions.append(
            Condition(
                fingerprint=_fingerprint(account.pk, "missing_position", bot_trade_id=trade.pk),
                kind="missing_position",
                bot_trade_id=trade.pk,
                ticket=ticket,
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
        matched=len(result.matches) + sum(len(net.bot_trade_ids) for net in result.net_matches),
        unmatched=len(result.unmatched_positions),
        missing=reported,
        netting=netting,
        was_netting=account.is_netting,
        net_matches=result.net_matches,
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
_UPSERT_TICKET = _UPSERT_ATTNAMES.index("ticket")
_UPSERT_CONFLICT = ", ".join(LivePosition._meta.get_field(name).column for name in ("account", "ticket"))
_UPSERT_UPDATES = ", ".join(
    f"{column} = EXCLUDED.{column}"
    for column in (LivePosition._meta.get_field(n).column for n in _LIVE_UPDATE_FIELDS)
)


@functools.cache
def _upsert_sql() -> str:
    """One text for any number of positions: each column goes as ONE array parameter, `unnest`ed into rows. The
    driver (client-side binding) splits a statement's text on its placeholders once and caches it only for texts of
    at most 50 placeholders and 4 kB; a VALUES row per position (20 columns each) was split again on every sync."""
    columns = ", ".join(f.column for f in _UPSERT_FIELDS)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in _UPSERT_FIELDS)
    table = LivePosition._meta.db_table
    account = LivePosition._meta.get_field("account").column
    ticket = LivePosition._meta.get_field("ticket").db_type(connection)
    # The positions no longer open go in the same statement (a data-modifying WITH part: other rows than the
    # insert's, so the two never touch the same row).
    return (
        f"WITH gone AS (DELETE FROM {table} WHERE {account} = %s AND NOT (ticket = ANY(%s::{ticket}[]))) "  # noqa: S608 - names from the model, values as parameters
        f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({_UPSERT_CONFLICT}) DO UPDATE SET {_UPSERT_UPDATES}"
    )


def _positions_upsert(columns: dict[str, list[Any]], *, account_id: int) -> None:
    """What `bulk_create(update_conflicts=True, unique_fields=[account, ticket], update_fields=_LIVE_UPDATE_FIELDS)`
    sends (and the delete of the account's other positions), as one statement whose text never changes. The ORM
    compiled and prepared every field of every row on every sync (cProfile: _positions_store 8.7 -> 4.0 ms per
    sync); here the values go to the driver as they are: the gateway already typed them (Decimal, aware UTC
    datetimes, int, str), and for these fields on PostgreSQL the ORM's preparation only checked that decimals are
    finite, which is kept. `columns`: one list per column (attname), the positions in the same order in each."""
    values = [columns[name] for name in _UPSERT_ATTNAMES]
    for index in _UPSERT_DECIMALS:  # the one check the ORM's preparation made: a finite number
        for value in values[index]:
            if value is not None and not value.is_finite():
                raise ValidationError({_UPSERT_ATTNAMES[index]: f"{value} is not a finite number"})
    arrays = [
        _array_literal(column, element) for column, element in zip(values, _UPSERT_FORMATS, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(), [account_id, arrays[_UPSERT_TICKET], *arrays])


def _number(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _text(value: Any) -> str:
    return "NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _boolean(value: Any) -> str:
    return "NULL" if value is None else ("t" if value else "f")


def _moment(value: Any) -> str:  # an aware datetime: its text form with the offset
    return "NULL" if value is None else f'"{value}"'


def _element_format(field: models.Field) -> Callable[[Any], str]:
    if isinstance(field, models.BooleanField):
        return _boolean
    if isinstance(field, models.DateTimeField):
        return _moment
    if isinstance(field, models.CharField | models.TextField):
        return _text
    return _number  # integers, decimals, foreign keys


_UPSERT_FORMATS = [_element_format(f) for f in _UPSERT_FIELDS]


def _array_literal(values: list[Any], element: Callable[[Any], str]) -> str:
    """A PostgreSQL array literal of one column's values (the statement casts it to the column's array type), each
    value written by `element`, chosen once per column by its field. Built here because the driver's array
    dumping, element by element, was ~3 % of a sync's CPU for 20 positions (0.43 -> 0.15 ms). Text elements are
    double-quoted with `"` and `\\` escaped (the array input syntax); the whole literal then goes as one string
    parameter, which the driver quotes as any string."""
    return "{" + ",".join(map(element, values)) + "}"


def _positions_store(
    *, account: TradingAccount, positions: Sequence[Position], outcome: _Outcome, now: datetime
) -> None:
    """Upsert the open positions and delete the ones no longer open: one statement whatever the count.
    Terminal data is already typed and checked by the gateway, so rows are not full_clean()ed one by one; nothing
    reads the rows back in the sync, so they go as column lists, not model instances (cProfile: the 20
    LivePosition instances of a sync were 6 % of its CPU)."""
    if not positions:
        LivePosition.objects.filter(account=account).delete()
        return
    links = [outcome.position_links.get(position.ticket, (None, "")) for position in positions]
    canonical = outcome.canonical
    count = len(positions)
    columns: dict[str, list[Any]] = {
        "account_id": [account.pk] * count,
        "ticket": [p.ticket for p in positions],
        "symbol": [p.symbol for p in positions],
        "canonical_symbol": [canonical.get(p.symbol, p.symbol.upper()) for p in positions],
        "side": [str(p.side) for p in positions],
        "volume": [p.volume for p in positions],
        "price_open": [p.price_open for p in positions],
        "price_current": [p.price_current for p in positions],
        "sl": [p.sl for p in positions],
        "tp": [p.tp for p in positions],
        "profit": [p.profit for p in positions],
        "swap": [p.swap for p in positions],
        "magic": [p.magic for p in positions],
        "comment": [p.comment[:64] for p in positions],
        "opened_at": [p.time for p in positions],
        "opened_at_server_epoch": [p.time_epoch for p in positions],
        "first_seen_at": [now] * count,
        "last_seen_at": [now] * count,
        "bot_trade_id": [bot_trade_id for bot_trade_id, _method in links],
        "match_method": [method for _bot_trade_id, method in links],
    }
    _positions_upsert(columns, account_id=account.pk)  # deletes the others too


@dataclass(frozen=True, slots=True)
class ReconciliationOutcome:
    """What the matcher concluded from one reading, ready to be stored (see reconciliation_prepare)."""

    outcome: _Outcome
    positions: Sequence[Position]
    trades: Sequence[BotTrade]  # every open bot trade of the account, as read for the matcher

    @property
    def matched(self) -> int:
        return self.outcome.matched

    @property
    def unmatched(self) -> int:
        return self.outcome.unmatched

    @property
    def missing(self) -> int:
        return self.outcome.missing


@dataclass(frozen=True, slots=True)
class ReconciliationStored:
    events_opened: int
    events_gone: int


# The open bot trades of an account, compiled once per process (core.db.PreparedQuery).
_OPEN_TRADES = PreparedQuery(
    lambda account_id: BotTrade.objects.filter(account_id=account_id, status=BotTradeStatus.OPEN).order_by(
        "created_at", "pk"
    )
)


# What the identity check compares a reading with: the stored positions' ticket, symbol and open time.
_STORED_POSITIONS = (
    f"SELECT ticket, symbol, opened_at_server_epoch FROM {LivePosition._meta.db_table} "  # noqa: S608 - the model's table
    f"WHERE {LivePosition._meta.get_field('account').column} = %s"
)


@dataclass(frozen=True, slots=True)
class ReconciliationReads:
    """What a sync reads of reconciliation's rows before its transaction, in one round trip (`reconciliation_reads`)."""

    stored_positions: (
        dict[int, tuple[str, int]] | None
    )  # ticket -> (symbol, opened_at_server_epoch); None: not read
    open_trades: list[BotTrade]


def reconciliation_reads(*, account_id: int, stored_positions: bool = True) -> ReconciliationReads:
    """The account's open bot trades (for the matcher) and, with `stored_positions`, its stored positions (for the
    identity check), read after the terminal reading and before the sync's transaction: ONE round trip where the
    driver allows (the statements sent as one query), one per statement otherwise."""
    trades_text = _OPEN_TRADES.text(account_id)
    if not stored_positions or trades_text is None:
        return ReconciliationReads(
            stored_positions=stored_positions_read(account_id=account_id) if stored_positions else None,
            open_trades=cast(list[BotTrade], _OPEN_TRADES.list(account_id)),
        )
    with connection.cursor() as cursor:
        stored_text = cursor.cursor.mogrify(_STORED_POSITIONS, [account_id])
    stored, trade_rows = fetch_together([stored_text, trades_text])
    return ReconciliationReads(
        stored_positions={ticket: (symbol, opened) for ticket, symbol, opened in stored},
        open_trades=cast(list[BotTrade], _OPEN_TRADES.objects(trade_rows)),
    )


def stored_positions_read(*, account_id: int) -> dict[int, tuple[str, int]]:
    """The account's stored positions as the identity check compares them: ticket -> (symbol, open time epoch)."""
    with connection.cursor() as cursor:
        cursor.execute(_STORED_POSITIONS, [account_id])
        return {ticket: (symbol, opened) for ticket, symbol, opened in cursor.fetchall()}


def reconciliation_prepare(
    *,
    account: TradingAccount,
    reading: AccountReading,
    gateway: Mt5Gateway,
    now: datetime,
    trades: list[BotTrade] | None = None,
) -> ReconciliationOutcome:
    """Match the reading's positions with the open bot trades (no transaction, no write; `trades` as
    `reconciliation_reads` gave them, read here when not given). Raises SymbolNotDescribed,
    matching.ReconciliationInputError or GatewayError when nothing can be concluded."""
    if trades is None:
        trades = cast(list[BotTrade], _OPEN_TRADES.list(account.pk))
    outcome = _reconcile(account=account, gateway=gateway, reading=reading, trades=trades, now=now)
    unmatched_details = {p.ticket: _unmatched_detail(p) for p in reading.positions}
    for condition in outcome.conditions:
        if condition.kind == "unmatched_position" and condition.ticket in unmatched_details:
            condition.detail.update(unmatched_details[condition.ticket])
    return ReconciliationOutcome(outcome=outcome, positions=reading.positions, trades=trades)


def reconciliation_store(
    *,
    account: TradingAccount,
    prepared: ReconciliationOutcome,
    now: datetime,
    writes: WriteBatch | None = None,
) -> ReconciliationStored:
    """Store what reconciliation_prepare concluded. Runs inside the caller's transaction; `writes` (the sync's
    batch) takes the writes nothing reads back, sent with the sync's last statement. Events that open, come back
    or go make the transaction commit synchronously."""
    outcome = prepared.outcome
    _positions_store(account=account, positions=prepared.positions, outcome=outcome, now=now)
    if outcome.netting or outcome.was_netting:
        for trade in net_matches_store(
            account=account,
            net_matches=outcome.net_matches,
            position_volumes={p.ticket: p.volume for p in prepared.positions},
            trades=prepared.trades,
            now=now,
        ):
            outcome.changed_trades[trade.pk] = trade
    if outcome.changed_trades:
        for trade in outcome.changed_trades.values():
            trade.updated_at = now
        BotTrade.objects.bulk_update(list(outcome.changed_trades.values()), _BOT_TRADE_SYNC_FIELDS)
    changes = events_apply(account=account, conditions=outcome.conditions, now=now, writes=writes)
    if writes is not None and (changes.opened or changes.reopened or changes.gone):
        writes.require_durable()
    _event_broadcasts(account_id=account.pk, changes=changes)
    return ReconciliationStored(
        events_opened=len(changes.opened) + len(changes.reopened),
        events_gone=len(changes.gone),
    )


def _event_broadcasts(*, account_id: int, changes: EventChanges) -> None:
    for verb, events in (("opened", changes.opened), ("reopened", changes.reopened), ("gone", changes.gone)):
        for event in events:
            broadcast_groups(
                [account_group(account_id), STAFF_GROUP],
                f"event.{verb}",
                account_id=account_id,
                event_id=event.pk,
                kind=event.kind,
            )
