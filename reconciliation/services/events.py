"""Reconciliation events: one row per condition for as long as it lasts, and what support staff do with them.

Keying: `fingerprint` = "<account>:<kind>:bt<bot trade id>" for divergences and missing positions, and
"<account>:unmatched_position:t<ticket>" for unmatched positions. At most one *active* row per fingerprint exists
(partial unique constraint): active = not resolved, or resolved while its condition is still present.

Lifecycle, applied after every *successful* sync (a failed sync changes no event):
* a condition with no active row → a new row (open, first_seen = last_seen = now);
* a condition with an active row → last_seen = now, detail refreshed; if the row was gone it is present again
  (gone_at cleared, occurrences + 1, an acknowledged row goes back to open);
* an active row whose condition the sync did not see → gone_at = now (first sync without it). A resolved row that
  is gone is history; if the condition ever comes back, it is a new row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import TradingAccount, User
from core.db import PreparedQuery, WriteBatch
from core.exceptions import ApplicationError, ConflictError
from core.realtime import STAFF_GROUP, account_group, broadcast
from reconciliation.models import ACTIVE_EVENT, EventState, ReconciliationEvent

_EVENT_SYNC_FIELDS = ["last_seen_at", "gone_at", "occurrences", "state", "detail", "ticket"]


@dataclass
class Condition:
    fingerprint: str
    kind: str
    bot_trade_id: int | None
    ticket: int | None
    symbol: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventChanges:
    opened: list[ReconciliationEvent] = field(default_factory=list)
    reopened: list[ReconciliationEvent] = field(default_factory=list)
    gone: list[ReconciliationEvent] = field(default_factory=list)


class EventStateError(ConflictError):
    """The event cannot move to that state (e.g. resolving a resolved event): a 409."""


# The note rules, one place for the API and the admin: acknowledging takes an optional note, resolving requires one.
NOTE_MAX_LENGTH = 2000
NOTE_REQUIRED = {"acknowledge": False, "resolve": True}


def _note_check(note: str, *, action: str) -> str:
    note = (note or "").strip()
    if NOTE_REQUIRED[action] and not note:
        raise ApplicationError(
            "Say how the event was resolved (a note is required).", extra={"fields": {"note": ["Required."]}}
        )
    if len(note) > NOTE_MAX_LENGTH:
        raise ApplicationError(
            f"A note has at most {NOTE_MAX_LENGTH} characters.", extra={"fields": {"note": ["Too long."]}}
        )
    return note


# An account's active events, compiled once per process (core.db.PreparedQuery).
_ACTIVE_EVENTS = PreparedQuery(
    lambda account_id: ReconciliationEvent.objects.filter(account_id=account_id).filter(ACTIVE_EVENT)
)


# The steady sync's touch of its events, one text whatever their number (the ORM compiled `filter(pk__in=...)
# .update(last_seen_at=...)` on every sync).
_TOUCH_SQL = f"UPDATE {ReconciliationEvent._meta.db_table} SET last_seen_at = %s WHERE id = ANY(%s)"  # noqa: S608 - the model's table


def events_apply(
    *, account: TradingAccount, conditions: list[Condition], now: datetime, writes: WriteBatch | None = None
) -> EventChanges:
    """Bring the account's events in line with what one successful sync saw, whatever the number of events: a read
    and, in the steady state, one UPDATE of last_seen_at (handed to `writes`, the sync's batch, when given: nothing
    later in the sync reads it); plus an INSERT when events open, an UPDATE when events go, a bulk UPDATE when
    details change or gone events come back. Call inside the sync's transaction."""
    active = {event.fingerprint: event for event in _ACTIVE_EVENTS.list(account.pk)}
    changes = EventChanges()
    still: list[int] = []  # present before and now, nothing else changed: only last_seen_at moves
    changed: list[ReconciliationEvent] = []
    seen: set[str] = set()
    for condition in conditions:
        if condition.fingerprint in seen:
            continue
        seen.add(condition.fingerprint)
        event = active.pop(condition.fingerprint, None)
        if event is None:
            changes.opened.append(
                ReconciliationEvent(
                    account=account,
                    kind=condition.kind,
                    fingerprint=condition.fingerprint,
                    bot_trade_id=condition.bot_trade_id,
                    ticket=condition.ticket,
                    symbol=condition.symbol,
                    detail=condition.detail,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
            continue
        event.last_seen_at = now
        if event.gone_at is None and event.detail == condition.detail and event.ticket == condition.ticket:
            still.append(event.pk)
            continue
        event.detail, event.ticket = condition.detail, condition.ticket
        if event.gone_at is not None:
            event.gone_at = None
            event.occurrences += 1
            if event.state == EventState.ACKNOWLEDGED:
                event.state = EventState.OPEN
            changes.reopened.append(event)
        changed.append(event)
    gone = [event for event in active.values() if event.gone_at is None]
    for event in gone:
        event.gone_at = now
    changes.gone = gone
    if changes.opened:
        ReconciliationEvent.objects.bulk_create(changes.opened)
    # The steady case is one plain UPDATE; bulk_update (CASE per row and field) only for rows that really changed.
    if still and writes is not None:
        writes.add(_TOUCH_SQL, [now, still])
    elif still:
        ReconciliationEvent.objects.filter(pk__in=still).update(last_seen_at=now)
    if gone:
        ReconciliationEvent.objects.filter(pk__in=[event.pk for event in gone]).update(gone_at=now)
    if changed:
        ReconciliationEvent.objects.bulk_update(changed, _EVENT_SYNC_FIELDS)
    return changes


def _event_broadcast(*, event: ReconciliationEvent, verb: str) -> None:
    for group in (account_group(event.account_id), STAFF_GROUP):
        broadcast(group, f"event.{verb}", account_id=event.account_id, event_id=event.pk, kind=event.kind)


@transaction.atomic
def event_acknowledge(*, event: ReconciliationEvent, actor: User, note: str = "") -> ReconciliationEvent:
    """open → acknowledged (someone is on it). Acknowledging an acknowledged event only adds the note."""
    note = _note_check(note, action="acknowledge")
    event = ReconciliationEvent.objects.select_for_update().get(pk=event.pk)
    if event.state == EventState.RESOLVED:
        raise EventStateError("This event is already resolved.", extra={"event_id": event.pk})
    if event.state == EventState.OPEN:
        event.state, event.acknowledged_by, event.acknowledged_at = (
            EventState.ACKNOWLEDGED,
            actor,
            timezone.now(),
        )
    event.note = _note_append(event.note, actor=actor, action="acknowledged", note=note)
    event.full_clean()
    event.save(update_fields=["state", "acknowledged_by", "acknowledged_at", "note"])
    _event_broadcast(event=event, verb="acknowledged")
    return event


@transaction.atomic
def event_resolve(*, event: ReconciliationEvent, actor: User, note: str) -> ReconciliationEvent:
    """open/acknowledged → resolved, with a note saying why. A resolved event whose condition persists stays
    resolved (it is not raised again) until the condition goes."""
    note = _note_check(note, action="resolve")
    event = ReconciliationEvent.objects.select_for_update().get(pk=event.pk)
    if event.state == EventState.RESOLVED:
        raise EventStateError("This event is already resolved.", extra={"event_id": event.pk})
    now = timezone.now()
    if event.acknowledged_at is None:
        event.acknowledged_by, event.acknowledged_at = actor, now
    event.state, event.resolved_by, event.resolved_at = EventState.RESOLVED, actor, now
    event.note = _note_append(event.note, actor=actor, action="resolved", note=note)
    event.full_clean()
    event.save(
        update_fields=["state", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "note"]
    )
    _event_broadcast(event=event, verb="resolved")
    return event


def _note_append(existing: str, *, actor: User, action: str, note: str) -> str:
    note = note.strip()
    if not note:
        return existing
    line = f"[{timezone.now():%Y-%m-%d %H:%M}Z {actor.get_username()} {action}] {note}"
    return f"{existing}\n{line}" if existing else line
