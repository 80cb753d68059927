"""Facts found by looking, not by an alert: an account without a fresh reading for too long (terminal
disconnected, sync failing) and the daily digest of open divergences for support. Both are periodic tasks; their
event keys make a rerun a no-op."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from accounts.models import AccountHealth, AccountStatus, TradingAccount
from notifications.events import Audience, Event
from notifications.models import EventKind, Notification, Severity
from notifications.services.outbox import notification_events_record


def _stale_event(account: TradingAccount, *, now: datetime, health: AccountHealth | None) -> Event:
    snapshot = account.latest_snapshot
    since = snapshot.taken_at if snapshot is not None else account.created_at
    return Event(
        # One event per stale episode: it ends with the next snapshot, which gives the next episode a new key.
        key=f"stale:{account.pk}:{snapshot.pk if snapshot is not None else 0}",
        kind=EventKind.ACCOUNT_STALE,
        severity=Severity.WARNING,
        occurred_at=now,
        audience=Audience.ACCOUNT,
        account_id=account.pk,
        payload={
            "last_snapshot_at": snapshot.taken_at.isoformat() if snapshot is not None else None,
            "stale_seconds": int((now - since).total_seconds()),
            "connected": None if health is None else health.connected,
            "health_error": "" if health is None else health.error[:200],
        },
    )


@transaction.atomic
def accounts_stale_notify(*, now: datetime) -> int:
    """Every active account whose latest reading is older than NOTIFY_ACCOUNT_STALE_SECONDS (or that never had
    one for that long) gets one account_stale event per episode."""
    limit = now - timedelta(seconds=settings.NOTIFY_ACCOUNT_STALE_SECONDS)
    accounts = list(
        TradingAccount.objects.filter(status=AccountStatus.ACTIVE)
        .filter(
            Q(latest_snapshot__taken_at__lt=limit) | Q(latest_snapshot__isnull=True, created_at__lt=limit)
        )
        .select_related("latest_snapshot")
    )
    if not accounts:
        return 0
    health = {h.account_id: h for h in AccountHealth.objects.filter(account__in=accounts)}
    events = [_stale_event(a, now=now, health=health.get(a.pk)) for a in accounts]
    known = set(
        Notification.objects.filter(event_key__in=[e.key for e in events]).values_list("event_key", flat=True)
    )
    fresh = [e for e in events if e.key not in known]
    notification_events_record(events=fresh)
    return len(fresh)


@transaction.atomic
def divergence_digest_notify(*, now: datetime) -> int:
    """Once a day, from NOTIFY_DIGEST_HOUR_UTC on: the open divergences per account, for support. Nothing is sent
    on a day without open divergences."""
    from reconciliation.models import EventState, ReconciliationEvent

    if now.hour < settings.NOTIFY_DIGEST_HOUR_UTC:
        return 0
    key = f"digest:{now.date().isoformat()}"
    if Notification.objects.filter(event_key=key).exists():
        return 0
    rows = (
        ReconciliationEvent.objects.filter(
            state__in=[EventState.OPEN, EventState.ACKNOWLEDGED], gone_at__isnull=True
        )
        .select_related("account")
        .order_by("account_id", "first_seen_at")
    )
    per_account: dict[int, dict] = {}
    kinds: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        account = row.account
        per_account.setdefault(
            account.pk,
            {
                "id": account.pk,
                "name": f"{account.login}@{account.server}",
                "oldest": row.first_seen_at.isoformat(),
            },
        )
        kinds[account.pk][row.kind] += 1
    if not per_account:
        return 0
    accounts = [{**info, "kinds": dict(kinds[pk])} for pk, info in per_account.items()]
    event = Event(
        key=key,
        kind=EventKind.DIVERGENCE_DIGEST,
        severity=Severity.WARNING,
        occurred_at=now,
        audience=Audience.SUPPORT,
        payload={
            "date": now.date().isoformat(),
            "total": sum(sum(k.values()) for k in kinds.values()),
            "accounts": accounts,
        },
    )
    return notification_events_record(events=[event])
