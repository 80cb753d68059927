"""Writes of the notifications app (see the modules for the rules)."""

from notifications.services.delivery import (
    DeliveryOutcome,
    notification_deliver,
    notification_retry,
    notifications_release_expired,
)
from notifications.services.monitors import accounts_stale_notify, divergence_digest_notify
from notifications.services.outbox import (
    notification_events_record,
    notifications_for_alerts,
    risk_config_changed_notify,
)
from notifications.services.preferences import (
    CreatedWebhook,
    notification_preference_update,
    user_time_zone_update,
    webhook_endpoint_create,
    webhook_secret_rotate,
)
from notifications.services.telegram import (
    LinkCode,
    telegram_chat_link,
    telegram_chat_set,
    telegram_chat_unlink,
    telegram_link_code_create,
    telegram_update_handle,
    telegram_updates_poll,
)

__all__ = [
    "CreatedWebhook",
    "DeliveryOutcome",
    "LinkCode",
    "accounts_stale_notify",
    "divergence_digest_notify",
    "notification_deliver",
    "notification_events_record",
    "notification_preference_update",
    "notification_retry",
    "notifications_for_alerts",
    "notifications_release_expired",
    "risk_config_changed_notify",
    "telegram_chat_link",
    "telegram_chat_set",
    "telegram_chat_unlink",
    "telegram_link_code_create",
    "telegram_update_handle",
    "telegram_updates_poll",
    "user_time_zone_update",
    "webhook_endpoint_create",
    "webhook_secret_rotate",
]
