"""Audit records: every guard decision and close attempt is a GuardAlert, pushed live after commit."""

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from core.realtime import STAFF_GROUP, account_group, broadcast
from guards.models import GuardAlert
from guards.services.ledger import alerts_sequence_after_commit
from notifications.events import alerts_may_notify
from notifications.services import notifications_for_alerts

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
    """Write the alerts in one INSERT and push each to the account's and the staff's live groups after commit.
    The alerts and their notification rows commit together (a savepoint when the caller is in a transaction)."""
    if not alerts:
        return []
    with transaction.atomic():
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
        _notify(created)
    return created


def _notify(alerts: list[GuardAlert]) -> None:
    """Notification outbox rows in the same transaction; delivery happens in a worker after commit. A fault in
    building them must not undo a guard decision: it is contained in a savepoint and logged."""
    if not alerts_may_notify(alerts):
        return  # most alerts (close sent, snapshot stale, ...) notify nobody: no query, no savepoint
    try:
        with transaction.atomic():
            notifications_for_alerts(alerts=alerts)
    except Exception:
        logger.exception("notifications for alerts %s were not recorded", [a.pk for a in alerts])


def alert_record(**kwargs: Any) -> GuardAlert:
    return alerts_record(alerts=[alert_build(**kwargs)])[0]
