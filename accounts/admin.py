"""Admin for users, trading accounts and snapshots.

Credentials are write-only: the form has a password input that is never pre-filled, and the stored ciphertext is
never shown. Support users have view permissions only, so they get a read-only page without the credentials field.
"""

from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from accounts.models import AccountHealth, AccountSnapshot, TradingAccount, User
from core.admin import ReadOnlyAdmin
from core.crypto import encrypt_secret


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_staff", "is_active")
    list_filter = ("groups", "is_staff", "is_active")

    @admin.display(description="Role")
    def role(self, obj: User) -> str:
        return obj.role or "-"


class TradingAccountForm(forms.ModelForm):
    new_password = forms.CharField(
        label="MT5 password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored password. Stored encrypted; never shown again.",
    )

    class Meta:
        model = TradingAccount
        fields = ("owner", "login", "server", "broker_company", "label", "backend", "connection", "status")

    def save(self, commit: bool = True) -> TradingAccount:
        account = super().save(commit=False)
        if self.cleaned_data.get("new_password"):
            account.password_encrypted = encrypt_secret(self.cleaned_data["new_password"])
        if commit:
            account.save()
        return account


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    form = TradingAccountForm
    list_display = (
        "login",
        "server",
        "label",
        "owner",
        "backend",
        "margin_mode",
        "status",
        "equity",
        "snapshot_fresh",
        "terminal",
        "password_set",
    )
    list_filter = ("status", "backend", "margin_mode", "server")
    search_fields = ("login", "server", "label", "owner__username")
    list_select_related = ("owner", "latest_snapshot", "health")
    readonly_fields = ("password_set", "margin_mode", "latest_snapshot", "created_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["owner", "login", "server", "broker_company", "label", "backend", "connection", "status"]
        if self.has_change_permission(request, obj) or (obj is None and self.has_add_permission(request)):
            fields.append("new_password")
        return [*fields, "password_set", "margin_mode", "latest_snapshot", "created_at", "updated_at"]

    @admin.display(boolean=True, description="Password set")
    def password_set(self, obj: TradingAccount) -> bool:
        return obj.has_password

    @admin.display(description="Terminal")
    def terminal(self, obj: TradingAccount) -> str:
        health = getattr(obj, "health", None)
        if health is None:
            return "not probed yet"
        link = "connected" if health.connected else "DOWN"
        circuit = f", circuit {health.circuit_state}" if health.circuit_state not in ("", "closed") else ""
        clock = ", broker clock offset unknown" if health.server_utc_offset_source == "unknown" else ""
        return f"{link}{circuit}{clock}"

    @admin.display(description="Equity")
    def equity(self, obj: TradingAccount) -> str:
        snap = obj.latest_snapshot
        return f"{snap.equity} {snap.currency}" if snap else "-"

    @admin.display(boolean=True, description="Fresh")
    def snapshot_fresh(self, obj: TradingAccount) -> bool:
        return obj.is_snapshot_fresh


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(ReadOnlyAdmin):
    """Read-only for everyone, owners included: snapshots are written by the sync only."""

    list_display = (
        "account",
        "taken_at",
        "balance",
        "equity",
        "margin",
        "margin_free",
        "margin_level",
        "margin_mode",
        "currency",
        "source",
    )
    list_filter = ("source", "margin_mode", "currency", "account__server")
    search_fields = ("account__login",)
    date_hierarchy = "taken_at"
    list_select_related = ("account",)
    raw_id_fields = ("account",)


@admin.register(AccountHealth)
class AccountHealthAdmin(ReadOnlyAdmin):
    """Read-only for everyone: rows are written by the probe task only."""

    list_display = (
        "account",
        "connected",
        "trade_allowed",
        "tradeapi_disabled",
        "ping_ms",
        "newest_tick_age_seconds",
        "probe_latency_ms",
        "circuit_state",
        "circuit_failures",
        "broker_clock",
        "server_utc_offset_measured_at",
        "checked_at",
    )
    list_filter = ("connected", "trade_allowed", "circuit_state", "server_utc_offset_source")
    list_select_related = ("account",)
    search_fields = ("account__login", "account__server")

    @admin.display(description="Broker clock")
    def broker_clock(self, obj: AccountHealth) -> str:
        return obj.broker_clock


# ---------------------------------------------------------------- login audit (django-axes)
# Written only by django-axes: read-only for everyone. Deleting a lockout row (AccessAttempt) unlocks that
# username+IP pair; only holders of its delete permission (owners) may.
for _model in (AccessAttempt, AccessFailureLog, AccessLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    actions: list[str] = []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin, ReadOnlyAdmin):
    actions: list[str] = []


@admin.register(AccessLog)
class AccessLogAdmin(axes_admin.AccessLogAdmin, ReadOnlyAdmin):
    actions: list[str] = []
