"""Notifications: who wants what on which channel, linked Telegram chats, webhook endpoints, and the outbox.

* `Notification` is the outbox row: one per (event, destination), written in the transaction of the fact that
  causes it (a GuardAlert, a risk configuration version, a stale-account episode, a digest day) and delivered later
  by Celery. The payload is plain data; the text is rendered at delivery, in the recipient's time zone.
* `DeliveryAttempt` records every try (outcome, HTTP status, error), so the admin and the pages show what happened.
"""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from core.models import BaseModel


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Channel(models.TextChoices):
    TELEGRAM = "telegram", "Telegram"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


USER_CHANNELS = (Channel.TELEGRAM, Channel.EMAIL)


class EventKind(models.TextChoices):
    GUARD_WARNING = "guard_warning", "Guard warning"
    GUARD_CRITICAL = "guard_critical", "Guard critical"
    GUARD_RECOVERED = "guard_recovered", "Guard back to normal"
    LIQUIDATION_SCHEDULED = "liquidation_scheduled", "Guard critical: liquidation scheduled"
    LIQUIDATION_CANCELLED = "liquidation_cancelled", "Liquidation cancelled (recovered)"
    LIQUIDATION_STARTED = "liquidation_started", "Liquidation started (account halted)"
    LIQUIDATION_FINISHED = "liquidation_finished", "Liquidation finished"
    ACCOUNT_HALTED = "account_halted", "Account halted"
    HALTED_POSITION = "halted_position", "Position opened while halted"
    MARKET_MARKED = "market_marked", "Market guard marked positions"
    CLOSE_FAILED = "close_failed", "Close failed"
    GUARD_RESET = "guard_reset", "Guard reset"
    GUARDS_FAILED = "guards_failed", "Guards failed (account unprotected)"
    RULE_LEVEL = "rule_level", "Rule set level changed"
    OBJECTIVES_MET = "objectives_met", "Rule set objectives met"
    ACCOUNT_STALE = "account_stale", "Account stale / terminal disconnected"
    RISK_CONFIG_CHANGED = "risk_config_changed", "Risk configuration changed"
    DIVERGENCE_DIGEST = "divergence_digest", "Daily digest of open divergences"


class NotificationPreference(BaseModel):
    """One user's choice for one channel. No row: the defaults of notifications.selectors (on, warning and up)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in USER_CHANNELS])
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "channel"], name="uniq_notification_preference"),
            models.CheckConstraint(
                condition=Q(channel__in=["telegram", "email"]), name="preference_user_channel"
            ),
        ]

    def __str__(self) -> str:
        state = f"≥ {self.min_severity}" if self.enabled else "off"
        return f"{self.user_id} {self.channel}: {state}"


class TelegramChat(BaseModel):
    """The Telegram chat a user's messages go to: linked by a one-time code sent to the bot, or entered by an owner."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram_chat"
    )
    chat_id = models.BigIntegerField(help_text="Telegram chat id (negative for groups).")
    username = models.CharField(max_length=64, blank=True)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Telegram chat {self.chat_id} of {self.user_id}"


class WebhookEndpoint(BaseModel):
    """An owner-configured URL that receives every event at or above its severity, signed with its own secret."""

    name = models.CharField(max_length=64)
    url = models.CharField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    secret_encrypted = models.TextField(editable=False, help_text="Fernet token (core.crypto); shown once.")
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    DEAD = "dead", "Dead letter (gave up)"


DUE_STATES = (DeliveryState.PENDING, DeliveryState.RETRYING)


class Notification(models.Model):
    """An outbox row. `destination` is `<channel>:<address>` (telegram:<chat id>, email:<address>, webhook:<id>);
    at most one row per (event, destination), so an event recorded twice never notifies anyone twice."""

    event_key = models.CharField(
        max_length=128, help_text="What happened, e.g. alert:42, risk:7, digest:2026-01-31."
    )
    kind = models.CharField(max_length=32, choices=EventKind.choices, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    account = models.ForeignKey(
        "accounts.TradingAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text="Empty for webhooks.",
    )
    webhook = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    destination = models.CharField(max_length=320)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(help_text="When the event happened (UTC).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    state = models.CharField(
        max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_key", "destination"], name="uniq_notification_event_destination"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.destination} ({self.state})"


class DeliveryAttempt(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["notification", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.notification_id}: {'ok' if self.ok else self.error}"
