"""Drawdown and daily-loss guards, evaluated on every fresh snapshot (shared/spec/guards.md "Drawdown guard").

`account_guards_evaluate` is called by the account-sync pipeline after it stored the snapshot, with the same
terminal reading (positions, deals, market data): nothing here calls the terminal, so the guard-state row lock is
never held while waiting on one. It costs two statements in the steady state: one `SELECT ... FOR UPDATE` that brings
the state, the account override and the global settings, and one `UPDATE` of the state (which the sync sends with its
own last statement, see core.db.WriteBatch). Transitions add one INSERT for their alerts (and, while halted
with positions open, one look-up of close intents; with balance operations in the reading, one look-up and one
insert of BalanceOperation rows). Closing is never done here: decisions are handed to the
dispatcher (Celery tasks after commit), so a sync never waits on order_send.
"""

import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, JSONField, QuerySet, Subquery
from django.db.models.functions import JSONObject

from accounts.models import AccountSnapshot, TradingAccount
from core.db import PreparedQuery, WriteBatch
from core.readcache import account_reads_invalidate
from guards.clock import guard_now
from guards.models import (
    GLOBAL_SETTINGS_PK,
    LEVEL_RANK,
    SETTING_FIELDS,
    AlertKind,
    BalanceOperation,
    BalanceOperationType,
    CloseIntent,
    CloseTrigger,
    Guard,
    GuardAlert,
    GuardSettings,
    GuardState,
    GuardStatus,
    IntentState,
    Level,
)
from guards.selectors import EffectiveGuardSettings, guard_settings_effective
from guards.services.alerts import alert_build, alerts_record
from guards.services.dispatch import dispatcher_get
from guards.services.market import market_guard_evaluate
from guards.services.retries import halt_trigger_key
from integrations.mt5.reading import AccountReading
from integrations.mt5.types import Deal
from rules.services.live import account_rules_observe

logger = logging.getLogger(__name__)

HUNDRED = Decimal(100)
PERCENT_PLACES = Decimal("0.0001")
BALANCE_OPERATION_TYPES = frozenset(BalanceOperationType.values)  # BALANCE 2, CREDIT 3, BONUS 6
# How many balance-operation tickets GuardState remembers, so overlapping windows cost no look-up.
RECENT_BALANCE_DEALS = 100
# A sync that finds a liquidation this late (the task was lost, the worker died before starting it) re-dispatches it,
# at most once per LIQUIDATION_REDISPATCH_SPACING (a terminal that stays down must not pile up tasks).
LIQUIDATION_OVERDUE = timedelta(seconds=1)
LIQUIDATION_REDISPATCH_SPACING = timedelta(seconds=30)

_STATE_FIELDS = [
    f.name
    for f in GuardState._meta.local_fields
    if f.name not in ("account", "reset_by", "reset_at", "reset_reason")
]


class _DecimalDecoder(json.JSONDecoder):
    """Settings read as JSON keep exact decimals (no float round trip)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parse_float"] = Decimal
        super().__init__(*args, **kwargs)


@dataclass
class GuardEvaluation:
    status: str
    fresh: bool
    drawdown_percent: Decimal | None = None
    daily_loss_percent: Decimal | None = None
    waiting: str = ""
    alerts: list[GuardAlert] = field(default_factory=list)
    daily_loss_waiting: str = ""


@dataclass
class _Context:
    account_id: int
    state: GuardState
    cfg: EffectiveGuardSettings
    now: datetime
    server: str = ""  # the broker server: market data cached per server is shared by its accounts
    alerts: list[GuardAlert] = field(default_factory=list)
    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    daily_loss_waiting: str = ""  # why the daily-loss guard could not move its day anchor

    def alert(self, **kwargs: Any) -> None:
        self.alerts.append(alert_build(account_id=self.account_id, now=self.now, **kwargs))


# ---------------------------------------------------------------- state access


@functools.cache
def _state_lock_query() -> QuerySet[GuardState]:
    """The lock query without its filter, built once per process (a template: every use clones it), which saves
    rebuilding the settings sub-select's 18-field JSON object and the annotation on every sync."""
    global_row = GuardSettings.objects.filter(pk=GLOBAL_SETTINGS_PK).values(
        json=JSONObject(**{name: name for name in SETTING_FIELDS})
    )[:1]
    return (
        GuardState.objects.select_for_update(of=("self",))
        .select_related(
            "account__guard_settings", "account__rule_set_assignment__rule_set", "account__rules_state"
        )
        .annotate(global_settings=Subquery(global_row, output_field=JSONField(decoder=_DecimalDecoder)))
    )


# Compiled once per process (the ORM spent more CPU compiling the join and the settings sub-select than PostgreSQL
# spent answering them); a settings change still applies to the next sync: the values are read, not the SQL.
_STATE_LOCK = PreparedQuery(lambda account_id: _state_lock_query().filter(pk=account_id))


def guard_state_lock(*, account_id: int) -> tuple[GuardState, EffectiveGuardSettings]:
    """The state row locked for update, with the effective settings, in ONE query (creates the row the first time).

    The global settings come as one JSON sub-select and the override through a join, so nothing is cached and a
    change in the admin applies to the next sync."""
    found = _STATE_LOCK.list(account_id)
    if not found:
        GuardState.objects.bulk_create([GuardState(account_id=account_id)], ignore_conflicts=True)
        found = _STATE_LOCK.list(account_id)
    (state,) = found
    global_values = state.global_settings
    override = getattr(state.account, "guard_settings", None)
    return state, guard_settings_effective(global_values=global_values, override=override)


_STATE_DECIMALS = [f.attname for f in GuardState._meta.local_fields if isinstance(f, DecimalField)]


def guard_state_save(*, state: GuardState, writes: WriteBatch | None = None) -> None:
    """Save the state row. With `writes` (the account sync's batch) the UPDATE goes with the sync's last statement
    and is not full_clean()ed: every value is computed here from typed decimals and the guards' own choices, the
    database enforces digits and types, and the one thing it would accept that we must not write, a NaN, is
    checked. The caller (the sync) makes the cached reads stale after its commit."""
    if writes is None:
        state.full_clean(exclude=["account", "reset_by"], validate_unique=False, validate_constraints=False)
        state.save(update_fields=_STATE_FIELDS)
        account_reads_invalidate(account_id=state.account_id)  # the cached guard status is stale after commit
        return
    for name in _STATE_DECIMALS:
        value = getattr(state, name)
        if value is not None and not value.is_finite():
            raise ValidationError({name: f"{value} is not a finite number"})
    writes.update(state, _STATE_FIELDS)


# ---------------------------------------------------------------- arithmetic


def percent_below(reference: Decimal | None, equity: Decimal) -> Decimal | None:
    """(reference - equity) / reference * 100, or None when there is no positive reference."""
    if reference is None or reference <= 0:
        return None
    return ((reference - equity) / reference * HUNDRED).quantize(PERCENT_PLACES)


def level_of(value: Decimal | None, warning: Decimal | None, critical: Decimal | None) -> Level:
    if value is None:
        return Level.NORMAL
    if critical is not None and value >= critical:
        return Level.CRITICAL
    if warning is not None and value >= warning:
        return Level.WARNING
    return Level.NORMAL


def level_step(
    *,
    current: str,
    warning_count: int,
    critical_count: int,
    value: Decimal | None,
    warning: Decimal | None,
    critical: Decimal | None,
    confirm: int,
    latched: bool,
) -> tuple[Level, int, int]:
    """One fresh reading through the confirmation rule.

    A level is entered after `confirm` consecutive readings at or beyond it; it is left downward at the first
    reading below it; `critical` does not move while latched (tripped or halted)."""
    at_warning = value is not None and warning is not None and value >= warning
    at_critical = value is not None and critical is not None and value >= critical
    warning_count = warning_count + 1 if at_warning else 0
    critical_count = critical_count + 1 if at_critical else 0
    rank = LEVEL_RANK[Level(current)]
    if latched and current == Level.CRITICAL:
        return Level.CRITICAL, warning_count, critical_count
    if at_critical and (critical_count >= confirm or rank >= LEVEL_RANK[Level.CRITICAL]):
        return Level.CRITICAL, warning_count, critical_count
    if at_warning and (warning_count >= confirm or rank >= LEVEL_RANK[Level.WARNING]):
        return Level.WARNING, warning_count, critical_count
    return Level.NORMAL, warning_count, critical_count


def status_of(state: GuardState) -> GuardStatus:
    if state.status in (GuardStatus.TRIPPED, GuardStatus.HALTED):
        return GuardStatus(state.status)
    if Level.WARNING in (state.drawdown_level, state.daily_loss_level):
        return GuardStatus.WARNING
    return GuardStatus.NORMAL


# ---------------------------------------------------------------- steps


def _freshness(
    *,
    state: GuardState,
    snapshot: AccountSnapshot | None,
    reading: AccountReading | None,
    now: datetime,
    failure: str,
) -> str:
    """Empty when the snapshot is a new, fresh reading; otherwise why the guard must wait."""
    if snapshot is None or reading is None:
        return f"no reading: {failure or 'the terminal could not be read'}"
    if state.last_snapshot_id == snapshot.pk:
        return "already evaluated"
    if state.last_snapshot_at is not None and snapshot.taken_at <= state.last_snapshot_at:
        return "older than the last snapshot evaluated"
    age = (now - snapshot.taken_at).total_seconds()
    if age > settings.ACCOUNT_SNAPSHOT_STALE_SECONDS:
        return f"stale: taken {int(age)} s ago"
    return ""


def _history_missing(*, state: GuardState, snapshot: AccountSnapshot, reading: AccountReading) -> str:
    """Without the deal history a changed balance or credit cannot be told apart from a gain or a loss: such a
    reading is not judged (a withdrawal must never liquidate, a deposit must never hide a loss)."""
    if reading.deals is not None or state.last_balance is None:
        return ""
    if snapshot.balance != state.last_balance or (
        state.last_credit is not None and snapshot.credit != state.last_credit
    ):
        return f"the balance or credit changed and the deal history could not be read ({reading.deals_error})"
    return ""


def _balance_operations(ctx: _Context, *, deals: Sequence[Deal]) -> None:
    """Each balance operation (deposit/withdrawal, credit, bonus) moves the peak and the day anchor by its amount
    (never below zero), exactly once per deal ticket: BalanceOperation rows remember the tickets applied.

    On the account's first reading the peak is not set yet: the operations found then are already part of the
    equity the peak starts from, so they are remembered without moving anything."""
    operations = sorted(
        (d for d in deals if d.type in BALANCE_OPERATION_TYPES), key=lambda d: (d.time, d.ticket)
    )
    state = ctx.state
    recent = [int(ticket) for ticket in state.recent_balance_deals or []]
    unknown = [d.ticket for d in operations if d.ticket not in recent]
    if not unknown:
        return
    seen = set(recent) | set(
        BalanceOperation.objects.filter(account_id=ctx.account_id, deal_ticket__in=unknown).values_list(
            "deal_ticket", flat=True
        )
    )
    state.recent_balance_deals = [*recent, *(t for t in unknown if t not in recent)][-RECENT_BALANCE_DEALS:]
    applying = state.peak_equity is not None
    rows = []
    for deal in operations:
        if deal.ticket in seen:
            continue
        seen.add(deal.ticket)
        amount = deal.profit
        peak_before, anchor_before = state.peak_equity, state.day_anchor
        if applying:
            state.peak_equity = max(state.peak_equity + amount, Decimal("0"))  # type: ignore[operator]
            if state.day_anchor is not None:
                state.day_anchor = max(state.day_anchor + amount, Decimal("0"))
        rows.append(
            BalanceOperation(
                account_id=ctx.account_id,
                deal_ticket=deal.ticket,
                deal_type=deal.type,
                amount=amount,
                deal_time=deal.time,
                comment=deal.comment[:64],
                applied=applying,
                peak_before=peak_before,
                peak_after=state.peak_equity,
                day_anchor_before=anchor_before,
                day_anchor_after=state.day_anchor,
                created_at=ctx.now,
            )
        )
        if applying:
            label = BalanceOperationType(deal.type).label
            ctx.alert(
                kind=AlertKind.BALANCE_ADJUSTED,
                guard=Guard.DRAWDOWN,
                message=f"{label} {amount} (deal #{deal.ticket}): peak {peak_before} → {state.peak_equity}",
                detail={
                    "deal": deal.ticket,
                    "deal_type": deal.type,
                    "amount": str(amount),
                    "comment": deal.comment,
                    "peak": [str(peak_before), str(state.peak_equity)],
                    "day_anchor": [_str(anchor_before), _str(state.day_anchor)],
                },
            )
    if rows:
        BalanceOperation.objects.bulk_create(rows)


def _peak_and_anchor(ctx: _Context, *, snapshot: AccountSnapshot) -> None:
    state = ctx.state
    if state.peak_equity is None or snapshot.equity > state.peak_equity:
        state.peak_equity = snapshot.equity
        state.peak_at = snapshot.taken_at
    if not snapshot.server_utc_offset_known:
        # The broker's day cannot be told (its clock offset is not measured yet): never guess it from UTC. The day
        # anchor stays as it is (none yet: the daily-loss guard waits) until the offset is known.
        ctx.daily_loss_waiting = "broker clock offset unknown: the trading day cannot be told yet"
        return
    day = snapshot.server_wall_time.date()
    if state.broker_day != day or state.day_anchor is None:
        state.broker_day = day
        state.day_anchor = max(snapshot.balance, snapshot.equity)


def _levels(ctx: _Context, *, equity: Decimal) -> None:
    state, cfg = ctx.state, ctx.cfg
    latched = state.status in (GuardStatus.TRIPPED, GuardStatus.HALTED)
    readings = (
        (Guard.DRAWDOWN, "drawdown", percent_below(state.peak_equity, equity), cfg.drawdown_warning_percent,
         cfg.drawdown_critical_percent),
        (Guard.DAILY_LOSS, "daily_loss", percent_below(state.day_anchor, equity), cfg.daily_loss_warning_percent,
         cfg.daily_loss_critical_percent),
    )  # fmt: skip
    for guard, prefix, value, warning, critical in readings:
        if warning is None and critical is None:
            value = None  # the guard is off
        current = getattr(state, f"{prefix}_level")
        level, warning_count, critical_count = level_step(
            current=current,
            warning_count=getattr(state, f"{prefix}_warning_count"),
            critical_count=getattr(state, f"{prefix}_critical_count"),
            value=value,
            warning=warning,
            critical=critical,
            confirm=cfg.confirm_readings,
            latched=latched,
        )
        setattr(state, f"{prefix}_percent", value)
        setattr(state, f"{prefix}_warning_count", warning_count)
        setattr(state, f"{prefix}_critical_count", critical_count)
        if level != current:
            setattr(state, f"{prefix}_level", level)
            ctx.alert(
                kind=AlertKind.GUARD_LEVEL,
                guard=guard,
                level=level,
                value=value,
                message=f"{guard.label} {value}% → {level}",
                detail={"from": current, "to": level, "warning": _str(warning), "critical": _str(critical)},
            )


def _trip(ctx: _Context) -> None:
    state, cfg = ctx.state, ctx.cfg
    if state.status in (GuardStatus.TRIPPED, GuardStatus.HALTED):
        return
    if state.drawdown_level == Level.CRITICAL:
        guard, value = Guard.DRAWDOWN, state.drawdown_percent
    elif state.daily_loss_level == Level.CRITICAL:
        guard, value = Guard.DAILY_LOSS, state.daily_loss_percent
    else:
        return
    state.status = GuardStatus.TRIPPED
    state.trip_id = uuid.uuid4()
    state.trip_guard = guard
    state.tripped_at = ctx.now
    state.liquidate_at = ctx.now + timedelta(seconds=cfg.liquidation_grace_seconds)
    state.liquidation_dispatched_at = ctx.now
    state.liquidation_started_at = None
    state.halted_at = None
    ctx.alert(
        kind=AlertKind.LIQUIDATION_SCHEDULED,
        guard=guard,
        level=Level.CRITICAL,
        value=value,
        message=f"{guard.label} critical ({value}%): every position will be closed at "
        f"{state.liquidate_at:%H:%M:%S} UTC unless it recovers",
        detail={"at": state.liquidate_at.isoformat(), "trip_id": str(state.trip_id)},
    )
    ctx.actions.append(
        (
            "liquidation",
            {
                "account_id": ctx.account_id,
                "trip_id": str(state.trip_id),
                "countdown": float(cfg.liquidation_grace_seconds),
            },
        )
    )


def _rules(
    ctx: _Context, *, snapshot: AccountSnapshot, reading: AccountReading, writes: WriteBatch | None
) -> None:
    """The account's rule set on this fresh snapshot (rules.services.live; its rows came with the state lock):
    level changes and objectives met are alerts; a breach closes everything and halts the account at once (a
    breached rule set cannot recover, so there is no grace period), naming the rule and the limit."""
    account = ctx.state.account
    assignment = getattr(account, "rule_set_assignment", None)
    if assignment is None:
        return
    outcome = account_rules_observe(
        account_id=ctx.account_id,
        assignment=assignment,
        row=getattr(account, "rules_state", None),
        snapshot_id=snapshot.pk,
        time=snapshot.taken_at,
        balance=snapshot.balance,
        equity=snapshot.equity,
        deals=reading.deals or (),
        now=ctx.now,
        writes=writes,
    )
    if outcome is None:
        return
    row, name = outcome.row, outcome.rule_set_name
    used = [u for u in (row.daily_used_percent, row.total_used_percent) if u is not None]
    if outcome.level_from != outcome.level_to and outcome.breach is None:
        ctx.alert(
            kind=AlertKind.RULE_LEVEL,
            guard=Guard.RULES,
            level=Level.WARNING if outcome.level_to == "warning" else Level.NORMAL,
            value=max(used) if used else None,
            message=f"{name}: {outcome.level_from} → {outcome.level_to} (daily {row.daily_used_percent}% used, "
            f"total {row.total_used_percent}% used)"
            + ("; the account is close-only" if outcome.close_only_set else ""),
            detail={
                "from": outcome.level_from,
                "to": outcome.level_to,
                "daily_used_percent": _str(row.daily_used_percent),
                "total_used_percent": _str(row.total_used_percent),
                "permitted_loss_today": _str(row.permitted_loss_today),
                "permitted_loss_total": _str(row.permitted_loss_total),
                "close_only": row.close_only,
                "rule_set": name,
            },
        )
    if outcome.passed_now:
        ctx.alert(
            kind=AlertKind.OBJECTIVES_MET,
            guard=Guard.RULES,
            level=Level.NORMAL,
            message=f"{name}: objectives met (profit target, {row.trading_days} trading day(s), best day "
            f"{row.best_day_share}%)",
            detail={
                "trading_days": row.trading_days,
                "best_day_share": _str(row.best_day_share),
                "rule_set": name,
            },
        )
    breach = outcome.breach
    if breach is None:
        return
    label = "daily loss" if breach.rule == "daily_loss" else "maximum loss"
    ctx.alert(
        kind=AlertKind.RULE_BREACH,
        guard=Guard.RULES,
        level=Level.CRITICAL,
        message=f"{name}: {label} limit breached: equity {breach.equity} below the limit {breach.limit}",
        detail={
            "rule": breach.rule,
            "equity": str(breach.equity),
            "limit": str(breach.limit),
            "time": breach.time.isoformat(),
            "rule_set": name,
        },
    )
    state = ctx.state
    if state.status in (GuardStatus.TRIPPED, GuardStatus.HALTED):
        return
    state.status = GuardStatus.TRIPPED
    state.trip_id = uuid.uuid4()
    state.trip_guard = Guard.RULES
    state.tripped_at = ctx.now
    state.liquidate_at = ctx.now
    state.liquidation_dispatched_at = ctx.now
    state.liquidation_started_at = None
    state.halted_at = None
    ctx.alert(
        kind=AlertKind.LIQUIDATION_SCHEDULED,
        guard=Guard.RULES,
        level=Level.CRITICAL,
        message=f"{name}: {label} limit {breach.limit} breached (equity {breach.equity}): closing every position "
        "now; the account is halted until reset",
        detail={
            "at": ctx.now.isoformat(),
            "trip_id": str(state.trip_id),
            "rule": breach.rule,
            "limit": str(breach.limit),
            "equity": str(breach.equity),
            "rule_set": name,
        },
    )
    ctx.actions.append(
        ("liquidation", {"account_id": ctx.account_id, "trip_id": str(state.trip_id), "countdown": 0.0})
    )


def _overdue(ctx: _Context) -> None:
    """Safety net: a tripped account whose liquidation never started is re-dispatched by the next sync."""
    state = ctx.state
    if (
        state.status == GuardStatus.TRIPPED
        and state.liquidation_started_at is None
        and state.liquidate_at is not None
        and ctx.now >= state.liquidate_at + LIQUIDATION_OVERDUE
        and (
            state.liquidation_dispatched_at is None
            or (state.tripped_at is not None and state.liquidation_dispatched_at <= state.tripped_at)
            or ctx.now >= state.liquidation_dispatched_at + LIQUIDATION_REDISPATCH_SPACING
        )
    ):
        state.liquidation_dispatched_at = ctx.now
        logger.warning(
            "account %s: liquidation %s overdue; dispatching it again", ctx.account_id, state.trip_id
        )
        ctx.actions.append(
            ("liquidation", {"account_id": ctx.account_id, "trip_id": str(state.trip_id), "countdown": 0.0})
        )


def _halted_positions(ctx: _Context, *, positions: Sequence[Any]) -> None:
    """While halted, every open position is closed: a new one is reported and closed under the episode's key; one
    whose latest attempt failed gets its next attempt once due (the retry schedule's sync-side driver)."""
    state = ctx.state
    if state.status != GuardStatus.HALTED or not positions:
        return
    trigger_key = halt_trigger_key(state.trip_id)
    by_ticket = {int(p.ticket): p for p in positions}
    latest: dict[int, tuple[int, int, str, datetime | None]] = {}
    for pk, ticket, attempt, intent_state, retry_at in CloseIntent.objects.filter(
        account_id=ctx.account_id, trigger_key=trigger_key, ticket__in=list(by_ticket)
    ).values_list("pk", "ticket", "attempt", "state", "retry_at"):
        if ticket not in latest or attempt > latest[ticket][1]:
            latest[ticket] = (pk, attempt, intent_state, retry_at)
    for pk, _attempt, intent_state, retry_at in latest.values():
        if intent_state == IntentState.FAILED and (retry_at is None or retry_at <= ctx.now):
            ctx.actions.append(("retry", {"account_id": ctx.account_id, "intent_id": pk, "countdown": 0.0}))
    new = sorted(t for t in by_ticket if t not in latest)
    if not new:
        return
    closing = ctx.cfg.close_new_positions_when_halted
    for ticket in new:
        position = by_ticket[ticket]
        ctx.alert(
            kind=AlertKind.HALTED_POSITION,
            guard=Guard(state.trip_guard) if state.trip_guard else Guard.SYSTEM,
            ticket=ticket,
            symbol=str(getattr(position, "symbol", "")),
            message=f"Position #{ticket} opened while the account is halted: "
            + ("closing it" if closing else "reported only (closing is off)"),
            detail={"closing": closing},
        )
    if closing:
        ctx.actions.append(
            (
                "closes",
                {
                    "account_id": ctx.account_id,
                    "trigger": CloseTrigger.HALTED,
                    "trigger_key": trigger_key,
                    "tickets": new,
                },
            )
        )


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _dispatch(actions: list[tuple[str, dict[str, Any]]]) -> None:
    target = dispatcher_get()
    for kind, kwargs in actions:
        if kind == "liquidation":
            target.liquidation(**kwargs)
        elif kind == "retry":
            target.close_retry(**kwargs)
        else:
            target.closes(**kwargs)


# ---------------------------------------------------------------- the service


def account_guards_evaluate(
    *,
    account: TradingAccount,
    snapshot: AccountSnapshot | None,
    reading: AccountReading | None,
    now: datetime | None = None,
    failure: str = "",
    writes: WriteBatch | None = None,
) -> GuardEvaluation:
    """Run every guard on the sync's fresh snapshot and the reading it came from. Makes no terminal call.

    `writes`: the account sync's batch (the sync runs the guards inside its own transaction): the state's UPDATE
    goes with the sync's last statement, and any alert or action makes that transaction commit synchronously.

    A missing (failed sync: `failure` says why), stale or already-seen snapshot changes nothing (never read as
    flat or as no drawdown): the guard records once that it is waiting for a fresh one, and why. So does a reading
    whose balance or credit changed while the deal history could not be read. The market guard runs on the
    reading's positions either way."""
    now = now or guard_now()
    positions = reading.positions if reading is not None else ()
    with transaction.atomic(savepoint=False):
        state, cfg = guard_state_lock(account_id=account.pk)
        ctx = _Context(account_id=account.pk, state=state, cfg=cfg, now=now, server=account.server)
        waiting = _freshness(state=state, snapshot=snapshot, reading=reading, now=now, failure=failure)
        if not waiting and snapshot is not None and reading is not None:
            waiting = _history_missing(state=state, snapshot=snapshot, reading=reading)
        if waiting or snapshot is None or reading is None:
            if waiting != "already evaluated" and not state.waiting_for_fresh:
                state.waiting_for_fresh = True
                ctx.alert(
                    kind=AlertKind.SNAPSHOT_STALE,
                    guard=Guard.SYSTEM,
                    message=f"Guards waiting for a fresh snapshot ({waiting})",
                    detail={"reason": waiting},
                )
        else:
            state.waiting_for_fresh = False
            _balance_operations(ctx, deals=reading.deals or ())
            _peak_and_anchor(ctx, snapshot=snapshot)
            _levels(ctx, equity=snapshot.equity)
            _trip(ctx)
            _rules(ctx, snapshot=snapshot, reading=reading, writes=writes)
            state.last_snapshot_id = snapshot.pk
            state.last_snapshot_at = snapshot.taken_at
            state.last_balance = snapshot.balance
            state.last_credit = snapshot.credit
            state.last_equity = snapshot.equity
        _overdue(ctx)
        _halted_positions(ctx, positions=positions)
        if cfg.market_guard_enabled and reading is not None:
            market_guard_evaluate(ctx=ctx, positions=positions, market=reading.market)
        state.status = status_of(state)
        state.evaluated_at = now
        guard_state_save(state=state, writes=writes)
        alerts = alerts_record(alerts=ctx.alerts)
        if writes is not None and (ctx.alerts or ctx.actions):
            writes.require_durable()  # a level changed, an alert opened or a close is asked for
    _dispatch(ctx.actions)
    return GuardEvaluation(
        status=state.status,
        fresh=not waiting,
        drawdown_percent=state.drawdown_percent,
        daily_loss_percent=state.daily_loss_percent,
        waiting=waiting,
        alerts=alerts,
        daily_loss_waiting=ctx.daily_loss_waiting,
    )


def account_guards_failure_record(*, account: TradingAccount, error: str, now: datetime) -> GuardAlert:
    """The guards raised on a reading: an operator alert (audited, pushed live to owners and support)."""
    return alerts_record(
        alerts=[
            alert_build(
                account_id=account.pk,
                now=now,
                kind=AlertKind.GUARDS_FAILED,
                guard=Guard.SYSTEM,
                level=Level.CRITICAL,
                message=f"Guards failed on the latest reading: {error}",
                detail={"error": error},
            )
        ]
    )[0]
