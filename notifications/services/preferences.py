"""Writes of a user's own notification settings, and of webhook endpoints (owners)."""

import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User, validate_time_zone
from core.crypto import encrypt_secret
from core.exceptions import PermissionDeniedError
from notifications.models import USER_CHANNELS, NotificationPreference, Severity, WebhookEndpoint


@transaction.atomic
def notification_preference_update(
    *, user: User, channel: str, enabled: bool, min_severity: str
) -> NotificationPreference:
    errors = {}
    if channel not in USER_CHANNELS:
        errors["channel"] = [f"Choose one of: {', '.join(USER_CHANNELS)}."]
    if min_severity not in Severity.values:
        errors["min_severity"] = [f"Choose one of: {', '.join(Severity.values)}."]
    if errors:
        raise ValidationError(errors)
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, channel=channel, defaults={"enabled": bool(enabled), "min_severity": min_severity}
    )
    return pref


def user_time_zone_update(*, user: User, time_zone: str) -> User:
    time_zone = (time_zone or "").strip()
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        raise ValidationError({"time_zone": exc.messages}) from None
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return user


@dataclass(frozen=True)
class CreatedWebhook:
    endpoint: WebhookEndpoint
    secret: str  # shown once, never stored in clear


def webhook_endpoint_create(
    *, actor: User, name: str, url: str, min_severity: str = Severity.WARNING
) -> CreatedWebhook:
    if not actor.is_owner:
        raise PermissionDeniedError("Only an owner may add a webhook.")
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        name=name.strip(),
        url=url.strip(),
        min_severity=min_severity,
        created_by=actor,
        secret_encrypted=encrypt_secret(secret),
    )
    endpoint.full_clean()
    endpoint.save()
    return CreatedWebhook(endpoint=endpoint, secret=secret)


def webhook_secret_rotate(*, actor: User, endpoint: WebhookEndpoint) -> str:
    if not actor.is_owner:
        raise PermissionDeniedError("Only an owner may rotate a webhook secret.")
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret_encrypted = encrypt_secret(secret)
    endpoint.save(update_fields=["secret_encrypted", "updated_at"])
    return secret
