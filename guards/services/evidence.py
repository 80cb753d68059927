"""When may auto-close believe a position is gone? (shared/spec/guards.md "A close is confirmed by evidence")

DONE / POSITION_CLOSED confirm on their own (autoclose.py). A position that a read does not find is confirmed only
when the terminal is connected to its trade server AND either its closing deal is in the history (entry OUT 1 or
OUT_BY 3 with the position's id) or a second read, at least one sync interval later, still does not find it. A
terminal that is not connected can answer "no positions" while they are open: its absence proves nothing.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from guards.models import CloseIntent
from integrations.mt5 import constants as mt5c
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.types import Deal

logger = logging.getLogger(__name__)

CLOSING_ENTRIES = (mt5c.DEAL_ENTRY_OUT, mt5c.DEAL_ENTRY_OUT_BY)
_CLOSE_REASONS = {
    0: "manual",
    1: "manual",
    2: "manual",
    3: "expert",
    4: "stop_loss",
    5: "take_profit",
    6: "stop_out",
}


@dataclass(frozen=True, slots=True)
class Absence:
    """What a read that did not find the position proves."""

    proven: bool
    evidence: str  # "closing_deal" | "second_read" | why it proves nothing yet
    deal: Deal | None = None
    closed_by: str = "unknown"


def second_read_after() -> timedelta:
    """'One sync later': the live sync's interval (the scenario runner sets it to the scenario's)."""
    return timedelta(seconds=float(getattr(settings, "RECONCILIATION_SYNC_INTERVAL_SECONDS", 10)))


def closing_deal(deals: Sequence[Deal]) -> tuple[str, Deal | None]:
    """The newest closing deal (OUT / OUT_BY) of a position and who closed it (`stop_loss`, `manual`, ...)."""
    closing = sorted((d for d in deals if d.entry in CLOSING_ENTRIES), key=lambda d: (d.time_msc, d.ticket))
    if not closing:
        return "unknown", None
    last = closing[-1]
    if last.entry == mt5c.DEAL_ENTRY_OUT_BY:
        return "close_by", last
    return _CLOSE_REASONS.get(last.reason, "other"), last


def absence_judge(*, intent: CloseIntent, gateway: Mt5Gateway, now: datetime) -> Absence:
    """Judge a read that did not find `intent.ticket`. Records the first unproven absence on the intent (the
    caller saves `absent_since`)."""
    try:
        connected = gateway.terminal().connected
    except GatewayError as exc:
        return Absence(False, f"terminal state not readable ({exc}): absence proves nothing")
    if not connected:
        return Absence(False, "terminal not connected to its trade server: absence proves nothing")
    try:
        closed_by, deal = closing_deal(gateway.deals_for_position(position_id=intent.ticket))
    except GatewayError as exc:
        logger.info("close #%s: deals not readable (%s)", intent.ticket, exc)
        closed_by, deal = "unknown", None
    if deal is not None:
        return Absence(True, "closing_deal", deal=deal, closed_by=closed_by)
    if intent.absent_since is None:
        intent.absent_since = now
        return Absence(False, "not found and no closing deal yet: waiting for a second read one sync later")
    if now - intent.absent_since >= second_read_after():
        return Absence(True, "second_read")
    return Absence(False, "not found and no closing deal yet: waiting for a second read one sync later")
