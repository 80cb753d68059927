"""Liquidation after the grace period: re-read the account, then close everything or cancel (shared/spec/guards.md).

Run by the liquidation task (Celery, countdown = grace period, late acknowledgement) and by the scenario runner at
the same virtual moment. Idempotent: the trip id names the episode; a repeated run of a decided episode only drives
its close intents further; a run for an episode that was cancelled or reset does nothing.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import TradingAccount
from guards.clock import guard_now
from guards.models import (
    AlertKind,
    CloseIntent,
    CloseTrigger,
    Guard,
    GuardAlert,
    GuardState,
    GuardStatus,
    Level,
)
from guards.services.alerts import alert_build, alerts_record
from guards.services.autoclose import CloseOutcome, idempotency_key_for, positions_close_all
from guards.services.evaluate import (
    guard_state_lock,
    guard_state_save,
    halt_trigger_key,
    level_of,
    percent_below,
    status_of,
)
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway

logger = logging.getLogger(__name__)


@dataclass
class LiquidationResult:
    outcome: str  # "closed" | "incomplete" | "cancelled" | "stale" | "retry"
    detail: str = ""
    closes: list[CloseOutcome] = field(default_factory=list)


def _balance_moved(state: GuardState, *, balance: Decimal, credit: Decimal) -> bool:
    if state.last_balance is None:
        return False
    return balance != state.last_balance or (state.last_credit is not None and credit != state.last_credit)


def _critical(value, critical) -> bool:  # type: ignore[no-untyped-def]
    return value is not None and critical is not None and value >= critical


def account_liquidate(
    *, account: TradingAccount, trip_id: str, gateway: Mt5Gateway, now: datetime | None = None
) -> LiquidationResult:
    now = now or guard_now()
    # The re-check reads the terminal before the state row is locked (no terminal call under the lock). A reading
    # from a terminal off its trade server counts as failed: it can answer with no positions and old values.
    recheck_error = ""
    try:
        connected = gateway.terminal().connected
        reading = gateway.account()
        positions = gateway.positions()
    except GatewayError as exc:
        recheck_error = str(exc)
    else:
        if not connected:
            recheck_error = "the terminal is not connected to its trade server"
    with transaction.atomic():
        state, cfg = guard_state_lock(account_id=account.pk)
        if str(state.trip_id) != str(trip_id) or state.status not in (
            GuardStatus.TRIPPED,
            GuardStatus.HALTED,
        ):
            return LiquidationResult(outcome="stale", detail=f"episode {trip_id} is no longer active")
        trigger = {Guard.DAILY_LOSS: CloseTrigger.DAILY_LOSS, Guard.RULES: CloseTrigger.RULES}.get(
            state.trip_guard, CloseTrigger.DRAWDOWN
        )
        final = state.trip_guard == Guard.RULES  # a breached rule set never recovers: no re-check of levels
        trigger_key = halt_trigger_key(state.trip_id)
        if state.status == GuardStatus.TRIPPED:
            if recheck_error:
                # Never read a failed re-check as "recovered": stay tripped; the task retries and every sync
                # re-dispatches an overdue liquidation.
                logger.warning(
                    "liquidation %s of account %s: re-check failed: %s", trip_id, account.pk, recheck_error
                )
                return LiquidationResult(outcome="retry", detail=recheck_error)
            if not final and _balance_moved(state, balance=reading.balance, credit=reading.credit):
                # A deposit or withdrawal since the last evaluated reading is applied to the peak by the next sync
                # (by its deal ticket); judged before that, a withdrawal would read as a loss. Retry after it.
                return LiquidationResult(
                    outcome="retry", detail="balance or credit moved since the last reading"
                )
            drawdown = percent_below(state.peak_equity, reading.equity)
            daily_loss = percent_below(state.day_anchor, reading.equity)
            alerts: list[GuardAlert] = []
            if not final and not (
                _critical(drawdown, cfg.drawdown_critical_percent)
                or _critical(daily_loss, cfg.daily_loss_critical_percent)
            ):
                _cancel(
                    state,
                    cfg,
                    drawdown=drawdown,
                    daily_loss=daily_loss,
                    alerts=alerts,
                    now=now,
                    equity=reading.equity,
                )
                guard_state_save(state=state)
                alerts_record(alerts=alerts)
                return LiquidationResult(outcome="cancelled")
            value = drawdown if state.trip_guard == Guard.DRAWDOWN else daily_loss
            state.status = GuardStatus.HALTED
            state.halted_at = now
            state.liquidation_started_at = now
            alerts.append(
                alert_build(
                    account_id=account.pk,
                    kind=AlertKind.LIQUIDATION_STARTED,
                    guard=state.trip_guard or Guard.DRAWDOWN,
                    level=Level.CRITICAL,
                    value=value,
                    now=now,
                    message=(
                        f"Rule-set limit breached: closing {len(positions)} position(s); the account is halted "
                        "until reset"
                        if final
                        else f"Still critical after the grace period ({value}%): closing "
                        f"{len(positions)} position(s); the account is halted until reset"
                    ),
                    detail={
                        "equity": str(reading.equity),
                        "drawdown_percent": str(drawdown),
                        "daily_loss_percent": str(daily_loss),
                        "tickets": [p.ticket for p in positions],
                        "trip_id": str(state.trip_id),
                    },
                )
            )
            guard_state_save(state=state)
            alerts_record(alerts=alerts)
            # The intents exist before anything is sent, and before any sync can see the account halted.
            CloseIntent.objects.bulk_create(
                [
                    CloseIntent(
                        idempotency_key=idempotency_key_for(trigger_key=trigger_key, ticket=p.ticket),
                        account_id=account.pk,
                        ticket=p.ticket,
                        symbol=p.symbol,
                        trigger=trigger,
                        trigger_key=trigger_key,
                    )
                    for p in positions
                ],
                ignore_conflicts=True,
            )
    tickets = list(
        CloseIntent.objects.filter(account_id=account.pk, trigger_key=trigger_key)
        .order_by("ticket")
        .values_list("ticket", flat=True)
    )
    closes = positions_close_all(
        account=account, trigger_key=trigger_key, gateway=gateway, trigger=trigger, tickets=tickets
    )
    done = all(c.state in ("confirmed", "failed") for c in closes)
    return LiquidationResult(outcome="closed" if done else "incomplete", closes=closes)


def _cancel(state, cfg, *, drawdown, daily_loss, alerts, now, equity) -> None:  # type: ignore[no-untyped-def]
    """Recovered during the grace period: release the latch, levels from this reading, audit the cancellation."""
    for guard, prefix, value, warning, critical in (
        (Guard.DRAWDOWN, "drawdown", drawdown, cfg.drawdown_warning_percent, cfg.drawdown_critical_percent),
        (
            Guard.DAILY_LOSS,
            "daily_loss",
            daily_loss,
            cfg.daily_loss_warning_percent,
            cfg.daily_loss_critical_percent,
        ),
    ):
        if warning is None and critical is None:
            value = None
        level = level_of(value, warning, critical)
        current = getattr(state, f"{prefix}_level")
        setattr(state, f"{prefix}_percent", value)
        setattr(state, f"{prefix}_critical_count", 0)
        if level == Level.NORMAL:
            setattr(state, f"{prefix}_warning_count", 0)
        else:
            setattr(state, f"{prefix}_warning_count", max(1, getattr(state, f"{prefix}_warning_count")))
        if level != current:
            setattr(state, f"{prefix}_level", level)
            alerts.append(
                alert_build(
                    account_id=state.account_id,
                    kind=AlertKind.GUARD_LEVEL,
                    guard=guard,
                    level=level,
                    value=value,
                    now=now,
                    message=f"{guard.label} {value}% → {level} (re-check after the grace period)",
                    detail={"from": current, "to": level},
                )
            )
    alerts.append(
        alert_build(
            account_id=state.account_id,
            kind=AlertKind.LIQUIDATION_CANCELLED,
            guard=state.trip_guard or Guard.DRAWDOWN,
            value=drawdown if state.trip_guard != Guard.DAILY_LOSS else daily_loss,
            now=now,
            message="Recovered during the grace period: liquidation cancelled",
            detail={"equity": str(equity), "trip_id": str(state.trip_id)},
        )
    )
    state.status = GuardStatus.NORMAL
    state.trip_id = None
    state.trip_guard = ""
    state.tripped_at = None
    state.liquidate_at = None
    state.liquidation_dispatched_at = None
    state.liquidation_started_at = None
    state.status = status_of(state)
