"""Admin: the outbox with each delivery's state and attempts (read-only, with "retry now"), webhook endpoints
(created through the service so the secret is generated and shown once), Telegram chats (an owner may enter a
chat id), and preferences."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin
from notifications.models import (
    DeliveryAttempt,
    Notification,
    NotificationPreference,
    TelegramChat,
    WebhookEndpoint,
)
from notifications.services import notification_retry, webhook_endpoint_create, webhook_secret_rotate


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "ok", "status_code", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "severity",
        "account",
        "channel",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("state", "channel", "severity", "kind")
    search_fields = ("event_key", "destination", "account__login")
    list_select_related = ("account",)
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.has_perm("notifications.change_notification")

    @admin.action(description="Retry now (dead or waiting notifications)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        from notifications.tasks import notification_deliver_task

        count = 0
        for notification in queryset:
            notification_retry(notification=notification)
            notification_deliver_task.delay(notification.pk)
            count += 1
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):
    rotate_secret = forms.BooleanField(required=False, help_text="Generate a new secret (shown once).")

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "min_severity", "enabled")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "min_severity", "enabled", "created_by", "created_at")
    list_filter = ("enabled", "min_severity")

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if not change:
            created = webhook_endpoint_create(
                actor=request.user,  # type: ignore[arg-type]
                name=obj.name,
                url=obj.url,
                min_severity=obj.min_severity,
            )
            obj.pk = created.endpoint.pk
            obj.secret_encrypted = created.endpoint.secret_encrypted
            if not form.cleaned_data.get("enabled", True):
                WebhookEndpoint.objects.filter(pk=obj.pk).update(enabled=False)
            self._show_secret(request, created.secret)
            return
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("rotate_secret"):
            self._show_secret(request, webhook_secret_rotate(actor=request.user, endpoint=obj))  # type: ignore[arg-type]

    def _show_secret(self, request: HttpRequest, secret: str) -> None:
        self.message_user(
            request,
            f"Signing secret (shown only now; give it to the receiver): {secret}",
            messages.WARNING,
        )


@admin.register(TelegramChat)
class TelegramChatAdmin(admin.ModelAdmin):
    """An owner may enter a user's chat id here (the user can also link with a one-time code)."""

    list_display = ("user", "chat_id", "username", "linked_by", "updated_at")
    search_fields = ("user__username", "username")
    fields = ("user", "chat_id", "username")

    def save_model(self, request: HttpRequest, obj: TelegramChat, form: Any, change: bool) -> None:
        obj.linked_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "channel", "enabled", "min_severity", "updated_at")
    list_filter = ("channel", "enabled", "min_severity")
    search_fields = ("user__username",)
