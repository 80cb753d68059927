"""Admin for the risk configuration and the trade-setup risk log.

Versions are immutable: the list of versions is the history, each version's page shows what it replaced, and the
owner "edits" the configuration with the add form (pre-filled with the values in force, a reason required), which
goes through `risk_config_update`. Everyone with view permission (owner, support, trader) gets read-only pages.
The risk log is read-only for everyone who may see it (owner, support).
"""

import json
from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import User
from core.admin import ReadOnlyAdmin
from risk.forms import RiskConfigChangeForm
from risk.models import RiskConfigVersion, TradeSetupRiskLog
from risk.selectors import risk_config_current
from risk.services import risk_config_update


def _values_table(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    return format_html(
        "risk {}% · splits {} · margin buffer {}% · max snapshot age {} s",
        values["risk_percent"],
        " / ".join(values["entry_splits"]),
        values["margin_buffer_percent"],
        values["max_snapshot_age_seconds"],
    )


@admin.register(RiskConfigVersion)
class RiskConfigVersionAdmin(admin.ModelAdmin):
    form = RiskConfigChangeForm
    list_display = (
        "version",
        "risk_percent",
        "splits",
        "margin_buffer_percent",
        "max_snapshot_age_seconds",
        "changed_by",
        "changed_at",
        "reason",
    )
    list_select_related = ("changed_by",)
    readonly_fields = ("version", "changed_by", "changed_at", "old_values", "new_values")
    ordering = ("-version",)

    def get_fields(self, request: HttpRequest, obj: RiskConfigVersion | None = None) -> tuple[str, ...]:
        if obj is None:
            return RiskConfigChangeForm.Meta.fields
        return ("version", "changed_by", "changed_at", "reason", "old_values", "new_values")

    def get_readonly_fields(
        self, request: HttpRequest, obj: RiskConfigVersion | None = None
    ) -> tuple[str, ...]:
        return () if obj is None else self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and cast(User, request.user).is_owner

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a version never changes; a change is a new version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        current = risk_config_current()
        return {
            "risk_percent": current.risk_percent,
            "entry_splits": current.entry_splits,
            "margin_buffer_percent": current.margin_buffer_percent,
            "max_snapshot_age_seconds": current.max_snapshot_age_seconds,
        }

    def save_model(self, request: HttpRequest, obj: RiskConfigVersion, form: Any, change: bool) -> None:
        data = form.cleaned_data
        created = risk_config_update(
            actor=cast(User, request.user),
            reason=data["reason"],
            risk_percent=data["risk_percent"],
            entry_splits=data["entry_splits"],
            margin_buffer_percent=data["margin_buffer_percent"],
            max_snapshot_age_seconds=data["max_snapshot_age_seconds"],
        )
        # The admin logs and redirects with `obj`: make it the version the service stored.
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False

    @admin.display(description="Entry splits")
    def splits(self, obj: RiskConfigVersion) -> str:
        return " / ".join(str(part) for part in obj.entry_splits)

    @admin.display(description="Old values (previous version)")
    def old_values(self, obj: RiskConfigVersion) -> str:
        return _values_table(None if obj.previous is None else obj.previous.values)

    @admin.display(description="New values")
    def new_values(self, obj: RiskConfigVersion) -> str:
        return _values_table(obj.values)


@admin.register(TradeSetupRiskLog)
class TradeSetupRiskLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "requested_by", "symbol", "config_version", "approved", "reason")
    list_filter = ("approved", "reason")
    search_fields = ("account__login", "requested_by__username", "inputs__symbol")
    date_hierarchy = "created_at"
    list_select_related = ("account", "requested_by", "config")
    fields = (
        "created_at",
        "account",
        "requested_by",
        "config",
        "approved",
        "reason",
        "inputs_json",
        "result_json",
    )
    readonly_fields = fields

    @admin.display(description="Symbol")
    def symbol(self, obj: TradeSetupRiskLog) -> str:
        return obj.inputs.get("symbol", "")

    @admin.display(description="Config", ordering="config__version")
    def config_version(self, obj: TradeSetupRiskLog) -> str:
        return f"v{obj.config.version}"

    @admin.display(description="Inputs")
    def inputs_json(self, obj: TradeSetupRiskLog) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.inputs, indent=2, sort_keys=True))

    @admin.display(description="Result")
    def result_json(self, obj: TradeSetupRiskLog) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.result, indent=2))
