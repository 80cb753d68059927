"""The audited reset of a tripped or halted guard (owner or support, with a reason)."""

from django.db import transaction

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from guards.clock import guard_now
from guards.models import OPEN_INTENT_STATES, AlertKind, CloseIntent, Guard, GuardState, GuardStatus, Level
from guards.selectors import close_tickets_failed
from guards.services.alerts import alert_build, alerts_record
from guards.services.evaluate import guard_state_lock, guard_state_save
from guards.services.retries import halt_trigger_key

RESET_PERMISSION = "guards.reset_guard"


class OpenPositionsNotConfirmedError(ApplicationError):
    """Positions the liquidation could not close are still open; the reset needs `confirm_open_positions=True`."""


def guard_reset(
    *, account: TradingAccount, actor: User, reason: str, confirm_open_positions: bool = False
) -> GuardState:
    """Back to normal: levels and counters cleared, any scheduled liquidation cancelled, the high-water mark and the
    day anchor re-based on the latest snapshot (so the loss that tripped the guard does not trip it again).

    Refused while a liquidation still has closes in flight (pending/sent/unresolved): they must be resolved first.
    When closes of the episode failed (their positions stay open: a reset stops the retries), the caller must
    confirm it with `confirm_open_positions=True`, else `OpenPositionsNotConfirmedError` lists the tickets; the
    reset's audit record keeps them (`detail.left_open`)."""
    if not (actor.is_active and (actor.is_superuser or actor.has_perm(RESET_PERMISSION))):
        raise PermissionDeniedError("Only owners and support staff may reset a guard.")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            "A reason is required to reset a guard.", extra={"fields": {"reason": ["Required."]}}
        )
    now = guard_now()
    left_open: list[int] = []
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
            left_open = close_tickets_failed(
                account_id=account.pk, trigger_key=halt_trigger_key(state.trip_id)
            )
            if left_open and not confirm_open_positions:
                tickets = ", ".join(f"#{t}" for t in left_open)
                raise OpenPositionsNotConfirmedError(
                    f"The liquidation could not close {tickets}; resetting stops its retries and leaves them open. "
                    "Confirm that they stay open to reset.",
                    extra={"open_tickets": left_open, "fields": {"confirm_open_positions": ["Required."]}},
                )
            # The reason to close is gone with the reset: no further attempts (the retry drivers check it too).
            CloseIntent.objects.filter(
                account_id=account.pk, trigger_key=halt_trigger_key(state.trip_id), retry_at__isnull=False
            ).update(retry_at=None)
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
                    message=(
                        f"Guard reset by {actor.get_username()}: {reason}"
                        + (f" (left open: {', '.join(f'#{t}' for t in left_open)})" if left_open else "")
                    )[:255],
                    detail={
                        "reason": reason,
                        "before": before,
                        "peak_equity": str(state.peak_equity),
                        "left_open": left_open,
                        "confirmed_open_positions": bool(left_open),
                    },
                    actor_id=actor.pk,
                )
            ]
        )
    return state
