"""What is worth telling people: guard alerts (and other facts) turned into notification events.

An event has a key that names the fact (`alert:<id>`, `risk:<version>`, ...), a kind, a severity, an audience and
a plain-data payload. `events_from_alerts` is pure apart from one query per final liquidation close (is anything
of that liquidation still open?).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from notifications.models import EventKind, Severity


class Audience(Enum):
    ACCOUNT = "account"  # the account's trader + owners and support (by their preferences)
    OPERATORS = "operators"  # owners and support
    SUPPORT = "support"  # support only


@dataclass(frozen=True)
class Event:
    key: str
    kind: EventKind
    severity: Severity
    occurred_at: datetime
    audience: Audience
    account_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


_LIQUIDATION_TRIGGERS = ("drawdown", "daily_loss")


def _alert_payload(alert: Any) -> dict[str, Any]:
    return {
        "alert_id": alert.pk,
        "guard": alert.guard,
        "level": alert.level,
        "value": None if alert.value is None else str(alert.value),
        "ticket": alert.ticket,
        "symbol": alert.symbol,
        "message": alert.message,
        "detail": alert.detail or {},
    }


def _kind_of(alert: Any, *, scheduled_accounts: set[int]) -> tuple[EventKind, Severity] | None:
    from guards.models import AlertKind, Level

    kind = alert.kind
    if kind == AlertKind.GUARD_LEVEL:
        before = (alert.detail or {}).get("from", Level.NORMAL)
        if alert.level == Level.CRITICAL:
            if alert.account_id in scheduled_accounts:
                return None  # the liquidation_scheduled message of the same decision says it, with the time
            return EventKind.GUARD_CRITICAL, Severity.CRITICAL
        if alert.level == Level.WARNING and before == Level.NORMAL:
            return EventKind.GUARD_WARNING, Severity.WARNING
        return EventKind.GUARD_RECOVERED, Severity.INFO
    if kind == AlertKind.RULE_LEVEL:
        # into warning: act now (and the account may be close-only); back to normal: good to know
        if alert.level == Level.WARNING:
            return EventKind.RULE_LEVEL, Severity.WARNING
        return EventKind.RULE_LEVEL, Severity.INFO
    if kind == AlertKind.CLOSE_FAILED and not _close_failure_worth_telling(alert.detail or {}):
        return None
    simple = {
        AlertKind.LIQUIDATION_SCHEDULED: (EventKind.LIQUIDATION_SCHEDULED, Severity.CRITICAL),
        AlertKind.LIQUIDATION_CANCELLED: (EventKind.LIQUIDATION_CANCELLED, Severity.WARNING),
        AlertKind.LIQUIDATION_STARTED: (EventKind.LIQUIDATION_STARTED, Severity.CRITICAL),
        AlertKind.HALTED: (EventKind.ACCOUNT_HALTED, Severity.CRITICAL),
        AlertKind.HALTED_POSITION: (EventKind.HALTED_POSITION, Severity.WARNING),
        AlertKind.MARKET_MARKED: (EventKind.MARKET_MARKED, Severity.WARNING),
        AlertKind.CLOSE_FAILED: (EventKind.CLOSE_FAILED, Severity.CRITICAL),
        AlertKind.RESET: (EventKind.GUARD_RESET, Severity.WARNING),
        # the trader has something to do (stop trading, ask for the next phase): as loud as a warning by default
        AlertKind.OBJECTIVES_MET: (EventKind.OBJECTIVES_MET, Severity.WARNING),
    }
    return simple.get(kind)


# A close that keeps failing (market closed for the weekend) is retried every minute: tell people at the first
# failure, then every REMIND_EVERY_ATTEMPTS-th, and when no further attempt is scheduled.
REMIND_EVERY_ATTEMPTS = 30


def _close_failure_worth_telling(detail: dict[str, Any]) -> bool:
    attempt = detail.get("attempt") or 1
    return attempt == 1 or not detail.get("retry_at") or attempt % REMIND_EVERY_ATTEMPTS == 0


def alerts_may_notify(alerts: Sequence[Any]) -> bool:
    from guards.models import AlertKind

    kinds = {
        AlertKind.GUARD_LEVEL, AlertKind.LIQUIDATION_SCHEDULED, AlertKind.LIQUIDATION_CANCELLED,
        AlertKind.LIQUIDATION_STARTED, AlertKind.HALTED, AlertKind.HALTED_POSITION, AlertKind.MARKET_MARKED,
        AlertKind.CLOSE_FAILED, AlertKind.CLOSE_CONFIRMED, AlertKind.RESET, AlertKind.GUARDS_FAILED,
        AlertKind.RULE_LEVEL, AlertKind.OBJECTIVES_MET,
    }  # fmt: skip
    return any(alert.kind in kinds for alert in alerts)


def events_from_alerts(alerts: Sequence[Any]) -> list[Event]:
    from guards.models import AlertKind

    scheduled = {a.account_id for a in alerts if a.kind == AlertKind.LIQUIDATION_SCHEDULED}
    events: list[Event] = []
    for alert in alerts:
        mapped = _kind_of(alert, scheduled_accounts=scheduled)
        if mapped is not None:
            kind, severity = mapped
            payload = _alert_payload(alert)
            if alert.actor_id:
                payload["actor_id"] = alert.actor_id
            events.append(
                Event(
                    key=f"alert:{alert.pk}",
                    kind=kind,
                    severity=severity,
                    occurred_at=alert.created_at,
                    audience=Audience.ACCOUNT,
                    account_id=alert.account_id,
                    payload=payload,
                )
            )
        if alert.kind == AlertKind.GUARDS_FAILED:
            events.append(_guards_failed(alert))
        if alert.kind in (AlertKind.CLOSE_CONFIRMED, AlertKind.CLOSE_FAILED):
            finished = _liquidation_finished(alert)
            if finished is not None:
                events.append(finished)
    return events


def _guards_failed(alert: Any) -> Event:
    """The guards failed on a reading: the account is not protected. Operators hear of it at most once an hour per
    account (a persisting fault fails every sync)."""
    return Event(
        key=f"guards_failed:{alert.account_id}:{alert.created_at:%Y-%m-%dT%H}",
        kind=EventKind.GUARDS_FAILED,
        severity=Severity.CRITICAL,
        occurred_at=alert.created_at,
        audience=Audience.OPERATORS,
        account_id=alert.account_id,
        payload=_alert_payload(alert),
    )


def _liquidation_finished(alert: Any) -> Event | None:
    """The last close of a liquidation reached a final state: one `liquidation_finished` for the episode.
    A position's latest attempt decides (a failed attempt with a retry scheduled is not final)."""
    from guards.models import OPEN_INTENT_STATES, CloseIntent, IntentState

    if alert.intent_id is None or (alert.detail or {}).get("trigger") not in _LIQUIDATION_TRIGGERS:
        return None
    trigger_key = CloseIntent.objects.filter(pk=alert.intent_id).values_list("trigger_key", flat=True).first()
    if not trigger_key:
        return None
    has_retries = any(f.name == "retry_at" for f in CloseIntent._meta.get_fields())
    fields = ["ticket", "state", *(["retry_at"] if has_retries else [])]
    latest: dict[int, dict[str, Any]] = {}
    for row in (
        CloseIntent.objects.filter(trigger_key=trigger_key, trigger__in=_LIQUIDATION_TRIGGERS)
        .order_by("pk")
        .values(*fields)
    ):
        latest[row["ticket"]] = row
    if not latest:
        return None
    for row in latest.values():
        if row["state"] in OPEN_INTENT_STATES or (row["state"] == IntentState.FAILED and row.get("retry_at")):
            return None
    failed = sorted(t for t, row in latest.items() if row["state"] == IntentState.FAILED)
    closed = sorted(t for t, row in latest.items() if row["state"] == IntentState.CONFIRMED)
    return Event(
        key=f"liquidation_finished:{trigger_key}",
        kind=EventKind.LIQUIDATION_FINISHED,
        severity=Severity.CRITICAL,
        occurred_at=alert.created_at,
        audience=Audience.ACCOUNT,
        account_id=alert.account_id,
        payload={"closed": closed, "failed": failed, "trigger_key": trigger_key, "guard": alert.guard},
    )
