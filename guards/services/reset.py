"""The audited reset of a tripped or halted guard (owner or support, with a reason)."""

from django.db import transaction

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from guards.clock import guard_now
from guards.models import OPEN_INTENT_STATES, AlertKind, CloseIntent, Guard, GuardState, GuardStatus, Level
from guards.services.alerts import alert_build, alerts_record
from guards.services.evaluate import guard_state_lock, guard_state_save, halt_trigger_key

RESET_PERMISSION = "guards.reset_guard"


def guard_reset(*, account: TradingAccount, actor: User, reason: str) -> GuardState:
    """Back to normal: levels and counters cleared, any scheduled liquidation cancelled, the high-water mark and the
    day anchor re-based on the latest snapshot (so the loss that tripped the guard does not trip it again).

    Refused while a liquidation still has closes in flight (pending/sent/unresolved): they must be resolved first."""
    if not (actor.is_active and (actor.is_superuser or actor.has_perm(RESET_PERMISSION))):
        raise PermissionDeniedError("Only owners and support staff may reset a guard.")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            "A reason is required to reset a guard.", extra={"fields": {"reason": ["Required."]}}
        )
    now = guard_now()
    with transaction.atomic():
        state, _cfg = guard_state_lock(account_id=account.pk)
        if state.trip_id is not None:
            in_flight = CloseIntent.objects.filter(
                account_id=account.pk,
                trigger_key=halt_trigger_key(state.trip_id),
                state__in=OPEN_INTENT_STATES,
            ).count()
            if in_flight:
                raise ConflictError(
                    f"{in_flight} close(s) of this liquidation are still in flight; wait until they are resolved.",
                    extra={"in_flight": in_flight},
                )
        before = {
            "status": state.status,
            "peak_equity": str(state.peak_equity),
            "day_anchor": str(state.day_anchor),
            "drawdown_level": state.drawdown_level,
            "daily_loss_level": state.daily_loss_level,
            "trip_id": str(state.trip_id) if state.trip_id else None,
        }
        snapshot = account.latest_snapshot
        if snapshot is not None:
            state.peak_equity = snapshot.equity
            state.peak_at = snapshot.taken_at
            state.broker_day = snapshot.server_wall_time.date()
            state.day_anchor = max(snapshot.balance, snapshot.equity)
        else:
            state.peak_equity = state.peak_at = state.broker_day = state.day_anchor = None
        for prefix in ("drawdown", "daily_loss"):
            setattr(state, f"{prefix}_level", Level.NORMAL)
            setattr(state, f"{prefix}_percent", None)
            setattr(state, f"{prefix}_warning_count", 0)
            setattr(state, f"{prefix}_critical_count", 0)
        state.status = GuardStatus.NORMAL
        state.trip_id = None
        state.trip_guard = ""
        state.tripped_at = state.liquidate_at = state.liquidation_started_at = state.halted_at = None
        state.liquidation_dispatched_at = None
        state.reset_at = now
        state.reset_by = actor
        state.reset_reason = reason
        guard_state_save(state=state)
        state.save(update_fields=["reset_at", "reset_by", "reset_reason"])
        alerts_record(
            alerts=[
                alert_build(
                    account_id=account.pk,
                    kind=AlertKind.RESET,
                    guard=Guard.SYSTEM,
                    now=now,
                    message=f"Guard reset by {actor.get_username()}: {reason}"[:255],
                    detail={"reason": reason, "before": before, "peak_equity": str(state.peak_equity)},
                    actor_id=actor.pk,
                )
            ]
        )
    return state
