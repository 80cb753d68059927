"""Guard services (writes). Re-exported so callers import from `guards.services`."""

from guards.services.autoclose import (
    CloseOutcome,
    close_intent_drive,
    close_intent_follow_up,
    close_intent_retry,
    close_intents_complete,
    position_close,
    positions_close_all,
)
from guards.services.evaluate import GuardEvaluation, account_guards_evaluate, account_guards_failure_record
from guards.services.liquidation import LiquidationResult, account_liquidate
from guards.services.market import market_reading_take
from guards.services.reset import guard_reset
from guards.services.settings import guard_settings_update

__all__ = [
    "CloseOutcome",
    "GuardEvaluation",
    "LiquidationResult",
    "account_guards_evaluate",
    "account_guards_failure_record",
    "account_liquidate",
    "close_intent_drive",
    "close_intent_follow_up",
    "close_intent_retry",
    "close_intents_complete",
    "guard_reset",
    "guard_settings_update",
    "market_reading_take",
    "position_close",
    "positions_close_all",
]
