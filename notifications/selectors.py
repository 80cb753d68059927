"""Reads: effective preferences, who receives an event on which channel, delivery lists scoped to the user."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Role, TradingAccount, User
from notifications.events import Audience, Event
from notifications.models import (
    DUE_STATES,
    SEVERITY_RANK,
    USER_CHANNELS,
    Channel,
    Notification,
    NotificationPreference,
    Severity,
    WebhookEndpoint,
)

DEFAULT_MIN_SEVERITY = Severity.WARNING


@dataclass(frozen=True)
class EffectivePreference:
    channel: str
    enabled: bool
    min_severity: str
    address: str  # the chat id or e-mail address it would go to; empty: the channel is not usable yet


@dataclass(frozen=True)
class Destination:
    channel: str
    destination: str
    recipient_id: int | None = None
    webhook_id: int | None = None


def _roles(user: User) -> set[str]:
    return {g.name for g in user.groups.all()}


def _address(user: User, channel: str) -> str:
    if channel == Channel.EMAIL:
        return (user.email or "").strip().lower()
    chat = getattr(user, "telegram_chat", None)  # the reverse one-to-one raises AttributeError when absent
    return str(chat.chat_id) if chat is not None else ""


def preferences_for_user(*, user: User) -> list[EffectivePreference]:
    """Each user channel with the saved choice or the default (on, warning and above)."""
    saved = {p.channel: p for p in user.notification_preferences.all()}
    result = []
    for channel in USER_CHANNELS:
        pref = saved.get(channel)
        result.append(
            EffectivePreference(
                channel=channel,
                enabled=pref.enabled if pref else True,
                min_severity=pref.min_severity if pref else DEFAULT_MIN_SEVERITY,
                address=_address(user, channel),
            )
        )
    return result


def _wants(pref: EffectivePreference, severity: str) -> bool:
    return pref.enabled and bool(pref.address) and SEVERITY_RANK[severity] >= SEVERITY_RANK[pref.min_severity]


def _candidates(events: Sequence[Event]) -> list[User]:
    account_ids = {e.account_id for e in events if e.account_id is not None}
    traders = set(TradingAccount.objects.filter(pk__in=account_ids).values_list("owner_id", flat=True))
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=[Role.OWNER, Role.SUPPORT]) | Q(is_superuser=True) | Q(pk__in=traders))
        .distinct()
        .select_related("telegram_chat")
        .prefetch_related(
            "groups", Prefetch("notification_preferences", NotificationPreference.objects.all())
        )
    )


def _in_audience(user: User, roles: set[str], event: Event, account_owner: dict[int, int]) -> bool:
    operator = user.is_superuser or bool(roles & {Role.OWNER, Role.SUPPORT})
    if event.audience is Audience.SUPPORT:
        return Role.SUPPORT in roles
    if event.audience is Audience.OPERATORS:
        return operator
    return operator or (event.account_id is not None and account_owner.get(event.account_id) == user.pk)


def destinations_for_events(events: Sequence[Event]) -> dict[str, list[Destination]]:
    """{event key: destinations}. Traders get their own accounts' events; owners and support get account events
    and the events addressed to them by their preferences; webhooks get every event at or above their severity.
    A few queries for the whole batch."""
    if not events:
        return {}
    users = _candidates(events)
    account_owner = dict(
        TradingAccount.objects.filter(pk__in={e.account_id for e in events if e.account_id}).values_list(
            "pk", "owner_id"
        )
    )
    per_user = [(user, _roles(user), preferences_for_user(user=user)) for user in users]
    webhooks = list(WebhookEndpoint.objects.filter(enabled=True))
    result: dict[str, list[Destination]] = {}
    for event in events:
        found: dict[str, Destination] = {}
        for user, roles, prefs in per_user:
            if not _in_audience(user, roles, event, account_owner):
                continue
            for pref in prefs:
                if _wants(pref, event.severity):
                    key = f"{pref.channel}:{pref.address}"
                    found.setdefault(key, Destination(pref.channel, key, recipient_id=user.pk))
        for hook in webhooks:
            if SEVERITY_RANK[event.severity] >= SEVERITY_RANK[hook.min_severity]:
                key = f"{Channel.WEBHOOK}:{hook.pk}"
                found[key] = Destination(Channel.WEBHOOK, key, webhook_id=hook.pk)
        result[event.key] = list(found.values())
    return result


def notification_list_for_user(*, user: User) -> QuerySet[Notification]:
    """Operators see every delivery; anyone else only the ones addressed to them."""
    qs = Notification.objects.select_related("account", "recipient", "webhook").prefetch_related(
        "delivery_attempts"
    )
    if user.is_operator:
        return qs
    return qs.filter(recipient=user)


def notification_ids_due(*, now: datetime, limit: int = 500) -> list[int]:
    return list(
        Notification.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
