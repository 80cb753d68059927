"""Audit records: every guard decision and close attempt is a GuardAlert, pushed live after commit."""

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.realtime import STAFF_GROUP, account_group, broadcast
from guards.models import GuardAlert
from guards.services.ledger import alerts_sequence_after_commit

logger = logging.getLogger(__name__)

_VALUE_LIMIT = Decimal("99999.9999")


def _value(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return max(-_VALUE_LIMIT, min(_VALUE_LIMIT, value)).quantize(Decimal("0.0001"))


def alert_build(
    *,
    account_id: int,
    kind: str,
    guard: str,
    message: str,
    now: datetime,
    level: str = "",
    value: Decimal | None = None,
    ticket: int | None = None,
    symbol: str = "",
    detail: dict[str, Any] | None = None,
    intent_id: int | None = None,
    actor_id: int | None = None,
) -> GuardAlert:
    """An unsaved alert (callers collect them and write them with alerts_record, one query)."""
    return GuardAlert(
        account_id=account_id,
        kind=kind,
        guard=guard,
        level=level,
        value=_value(value),
        ticket=ticket,
        symbol=symbol,
        message=message[:255],
        detail=detail or {},
        intent_id=intent_id,
        actor_id=actor_id,
        created_at=now,
    )


def alerts_record(*, alerts: Sequence[GuardAlert]) -> list[GuardAlert]:
    """Write the alerts in one INSERT and push each to the account's and the staff's live groups after commit."""
    if not alerts:
        return []
    created = GuardAlert.objects.bulk_create(list(alerts))
    alerts_sequence_after_commit()  # ledger numbers, in commit order (guards/services/ledger.py)
    for alert in created:
        logger.info("guard alert %s account=%s %s", alert.kind, alert.account_id, alert.message)
        payload = {
            "alert_id": alert.pk,
            "account_id": alert.account_id,
            "kind": alert.kind,
            "level": alert.level,
        }
        broadcast(account_group(alert.account_id), "guard.alert", **payload)
        broadcast(STAFF_GROUP, "guard.alert", **payload)
    return created


def alert_record(**kwargs: Any) -> GuardAlert:
    return alerts_record(alerts=[alert_build(**kwargs)])[0]
