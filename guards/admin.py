"""Admin for the guards: settings with their history (owner edits; support reads), guard states with the audited
reset action (owner and support, a reason required), and the read-only audit trail (alerts, close intents).

Every write goes through a service: `guard_settings_update` (one history row per changed field) and `guard_reset`.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin
from core.exceptions import ApplicationError
from guards.models import (
    GLOBAL_ONLY_FIELDS,
    SETTING_FIELDS,
    AccountGuardSettings,
    BalanceOperation,
    CloseIntent,
    GuardAlert,
    GuardSettings,
    GuardSettingsChange,
    GuardState,
    ManualCloseRequest,
)
from guards.selectors import close_tickets_failed
from guards.services import guard_reset, guard_settings_update
from guards.services.reset import RESET_PERMISSION
from guards.services.retries import halt_trigger_key

HISTORY_ROWS = 20


def _history(changes: QuerySet[GuardSettingsChange]) -> str:
    rows = list(changes.select_related("changed_by")[:HISTORY_ROWS])
    if not rows:
        return "No change yet."
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                f"{c.changed_at:%Y-%m-%d %H:%M:%S}",
                c.changed_by.get_username() if c.changed_by else "system",
                c.field,
                c.old_value,
                c.new_value,
                c.reason,
            )
            for c in rows
        ),
    )
    return format_html(
        "<table><thead><tr><th>When (UTC)</th><th>Who</th><th>Setting</th><th>Old</th><th>New</th>"
        "<th>Reason</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


class _SettingsForm(forms.ModelForm):
    change_reason = forms.CharField(
        required=False, max_length=255, help_text="Why the settings change (kept in the history)."
    )


class _SettingsAdminMixin:
    """Saving = the settings service, so every changed field lands in the history with who, when, old and new."""

    form: Any = _SettingsForm

    def _values(self, form: forms.ModelForm, names: list[str]) -> dict[str, Any]:
        return {name: form.cleaned_data[name] for name in names if name in form.changed_data}

    def _service_save(self, request: HttpRequest, obj: Any, form: forms.ModelForm, *, account: Any) -> None:
        names = [
            n
            for n in form.cleaned_data
            if n in SETTING_FIELDS or n in GLOBAL_ONLY_FIELDS or n == "daily_loss_enabled"
        ]
        values = self._values(form, names)
        try:
            guard_settings_update(
                actor=request.user,  # type: ignore[arg-type]
                values=values,
                account=account,
                reason=form.cleaned_data.get("change_reason", ""),
            )
        except (ApplicationError, ValidationError) as exc:
            messages.error(request, getattr(exc, "message", None) or "; ".join(getattr(exc, "messages", [])))
            return
        obj.refresh_from_db()


@admin.register(GuardSettings)
class GuardSettingsAdmin(_SettingsAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "drawdown_warning_percent", "drawdown_critical_percent", "daily_loss_critical_percent",
                    "liquidation_grace_seconds", "market_guard_action", "updated_at")  # fmt: skip
    readonly_fields = ("history", "updated_at")
    fieldsets = (
        ("Drawdown and daily loss", {"fields": ("drawdown_warning_percent", "drawdown_critical_percent",
                                                "daily_loss_warning_percent", "daily_loss_critical_percent",
                                                "confirm_readings", "liquidation_grace_seconds",
                                                "close_new_positions_when_halted")}),
        ("Market guard", {"fields": ("market_guard_enabled", "market_guard_action", "market_gap_percent",
                                     "market_gap_timeframe", "market_spread_multiplier", "market_spread_window_seconds",
                                     "market_spread_min_samples", "market_spread_cap_points",
                                     "market_stale_quote_seconds")}),
        ("Auto-close", {"fields": ("close_price_retries", "close_deviation_points")}),
        ("Manual close", {"fields": ("traders_may_close_positions",)}),
        ("Change", {"fields": ("change_reason", "updated_at", "history")}),
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not GuardSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="History (newest first)")
    def history(self, obj: GuardSettings) -> str:
        return _history(GuardSettingsChange.objects.filter(account__isnull=True))

    def save_model(
        self, request: HttpRequest, obj: GuardSettings, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            GuardSettings.objects.get_or_create(pk=1)
        self._service_save(request, obj, form, account=None)


@admin.register(AccountGuardSettings)
class AccountGuardSettingsAdmin(_SettingsAdminMixin, admin.ModelAdmin):
    list_display = ("account", "drawdown_warning_percent", "drawdown_critical_percent", "daily_loss_enabled",
                    "daily_loss_critical_percent", "market_guard_action", "updated_at")  # fmt: skip
    list_select_related = ("account",)
    search_fields = ("account__login", "account__server", "account__label")
    raw_id_fields = ("account",)
    readonly_fields = ("history", "updated_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["account", "daily_loss_enabled", *SETTING_FIELDS, "change_reason", "updated_at", "history"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("account", *self.readonly_fields) if obj is not None else self.readonly_fields

    @admin.display(description="History (newest first)")
    def history(self, obj: AccountGuardSettings) -> str:
        if obj.pk is None:
            return "-"
        return _history(GuardSettingsChange.objects.filter(account_id=obj.pk))

    def save_model(
        self, request: HttpRequest, obj: AccountGuardSettings, form: forms.ModelForm, change: bool
    ) -> None:
        self._service_save(request, obj, form, account=obj.account)


@admin.register(GuardSettingsChange)
class GuardSettingsChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "scope", "field", "old_value", "new_value", "changed_by", "reason")
    list_filter = ("field", ("account", admin.EmptyFieldListFilter), "changed_by")
    search_fields = ("field", "reason", "account__login")
    date_hierarchy = "changed_at"
    list_select_related = ("account", "changed_by")

    @admin.display(description="Scope")
    def scope(self, obj: GuardSettingsChange) -> str:
        return str(obj.account) if obj.account_id else "global"


class GuardResetForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Required. Kept in the audit trail with your name.",
    )
    confirm_open_positions = forms.BooleanField(
        required=False,
        label="The positions listed as left open stay open",
        help_text="Required when a liquidation could not close every position: the reset stops its retries.",
    )


@admin.register(GuardState)
class GuardStateAdmin(ReadOnlyAdmin):
    list_display = ("account", "status", "drawdown_level", "drawdown_percent", "daily_loss_level",
                    "daily_loss_percent", "peak_equity", "liquidate_at", "halted_at", "reset_at")  # fmt: skip
    list_filter = ("status", "drawdown_level", "daily_loss_level")
    search_fields = ("account__login", "account__server", "account__label")
    list_select_related = ("account", "reset_by")
    actions = ["reset_guards"]

    def has_reset_guard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESET_PERMISSION)

    @admin.action(description="Reset the selected guards (reason required)", permissions=["reset_guard"])
    def reset_guards(self, request: HttpRequest, queryset: QuerySet[GuardState]) -> HttpResponse | None:
        form = GuardResetForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for state in queryset.select_related("account", "account__latest_snapshot"):
                try:
                    guard_reset(
                        account=state.account,
                        actor=request.user,  # type: ignore[arg-type]
                        reason=form.cleaned_data["reason"],
                        confirm_open_positions=form.cleaned_data["confirm_open_positions"],
                    )
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{state.account}: {exc.message}", messages.ERROR)
            if done:
                self.message_user(request, f"{done} guard(s) reset.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reset guards",
            "opts": self.model._meta,
            "form": form,
            "states": [
                (
                    state,
                    close_tickets_failed(account_id=state.pk, trigger_key=halt_trigger_key(state.trip_id))
                    if state.trip_id
                    else [],
                )
                for state in queryset.select_related("account")
            ],
            "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "reset_guards",
        }
        return TemplateResponse(request, "admin/guards/guardstate/reset.html", context)


@admin.register(GuardAlert)
class GuardAlertAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "kind",
        "guard",
        "level",
        "value",
        "ticket",
        "symbol",
        "message",
        "actor",
    )
    list_filter = ("kind", "guard", "level", "created_at")
    search_fields = ("message", "account__login", "ticket", "symbol")
    date_hierarchy = "created_at"
    list_select_related = ("account", "actor")


@admin.register(BalanceOperation)
class BalanceOperationAdmin(ReadOnlyAdmin):
    list_display = ("deal_time", "account", "deal_ticket", "deal_type", "amount", "applied", "peak_before",
                    "peak_after", "day_anchor_before", "day_anchor_after", "comment")  # fmt: skip
    list_filter = ("deal_type", "applied", "deal_time")
    search_fields = ("deal_ticket", "account__login", "comment")
    date_hierarchy = "deal_time"
    list_select_related = ("account",)


@admin.register(CloseIntent)
class CloseIntentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "ticket", "symbol", "trigger", "state", "order_sends", "attempts",
                    "last_retcode", "finished_at")  # fmt: skip
    list_filter = ("state", "trigger", "created_at")
    search_fields = ("idempotency_key", "ticket", "account__login", "symbol")
    date_hierarchy = "created_at"
    list_select_related = ("account", "actor")


@admin.register(ManualCloseRequest)
class ManualCloseRequestAdmin(ReadOnlyAdmin):
    """Idempotency keys of manual close requests (kept 24 h); written by the manual close service only."""

    list_display = ("created_at", "account", "user", "ticket", "idempotency_key", "trigger", "expires_at")
    list_filter = ("trigger",)
    search_fields = ("idempotency_key", "account__login")
    raw_id_fields = ("account", "user")
