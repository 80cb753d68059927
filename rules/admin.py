"""Admin for rule sets and their assignment to accounts: owners create and edit (a reason each time, through the
services, so every edit is a history row); support reads; traders have no admin permission. Nothing is deleted: an
account leaves funded-account limits by being put under `classic`."""

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from accounts.models import User
from core.admin import ReadOnlyAdmin
from rules.forms import AccountRuleSetForm, RuleSetForm
from rules.models import (
    TERM_FIELDS,
    AccountRuleSet,
    AccountRuleSetChange,
    AccountRulesState,
    RuleSet,
    RuleSetChange,
)
from rules.presets import PRESETS
from rules.services import account_rule_set_assign, rule_set_create, rule_set_update

HISTORY_ROWS = 20


def _history_table(rows: list[Any]) -> str:
    if not rows:
        return "No change yet."
    body = format_html_join(
        "",
        "<tr><td>r{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                change.revision,
                f"{change.changed_at:%Y-%m-%d %H:%M:%S}",
                change.changed_by.get_username() if change.changed_by else "system",
                _diff(change.old, change.new),
                change.reason,
            )
            for change in rows
        ),
    )
    return format_html(
        "<table><thead><tr><th>Revision</th><th>When (UTC)</th><th>Who</th><th>Old → new</th><th>Why</th></tr>"
        "</thead><tbody>{}</tbody></table>",
        body,
    )


def _diff(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    if old is None:
        return "created: " + ", ".join(f"{k}={v}" for k, v in new.items() if k != "description")
    return "; ".join(f"{k}: {old.get(k)} → {v}" for k, v in new.items() if old.get(k) != v)


def _copy_into(target: Any, source: Any) -> None:
    # The admin logs and redirects with the form's object: make it the row the service stored.
    for field in target._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    form = RuleSetForm
    list_display = (
        "name",
        "kind",
        "preset",
        "timezone",
        "reset_time",
        "daily_loss_percent",
        "max_loss_percent",
        "max_loss_mode",
        "profit_target_percent",
        "revision",
        "updated_at",
    )
    list_filter = ("kind", "preset")
    search_fields = ("name",)
    readonly_fields = ("preset", "revision", "created_at", "updated_at", "history")

    def get_fields(self, request: HttpRequest, obj: RuleSet | None = None) -> list[str]:
        if obj is None:
            return ["start_from_preset", "name", "description", *TERM_FIELDS, "reason"]
        fields = ["name", "description", *TERM_FIELDS]
        if self.has_change_permission(request, obj):
            fields.append("reason")
        return [*fields, "preset", "revision", "created_at", "updated_at", "history"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and cast(User, request.user).is_owner

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and cast(User, request.user).is_owner

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: RuleSet, form: Any, change: bool) -> None:
        data = form.cleaned_data
        terms = {name: data[name] for name in TERM_FIELDS}
        actor = cast(User, request.user)
        if change:
            stored = rule_set_update(
                actor=actor,
                rule_set=obj,
                reason=data["reason"],
                name=data["name"],
                description=data["description"],
                **terms,
            )
        else:
            preset = data.get("start_from_preset") or None
            stored = rule_set_create(
                actor=actor,
                name=data["name"],
                description=data["description"] or None,
                reason=data["reason"],
                preset=preset,
                **terms,
            )
        _copy_into(obj, stored)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """`?preset=<key>` fills the add form with the preset's terms (the links above the form)."""
        initial = super().get_changeform_initial_data(request)
        preset = PRESETS.get(request.GET.get("preset", ""))
        if preset is not None:
            initial |= {name: preset[name] for name in TERM_FIELDS} | {
                "start_from_preset": request.GET["preset"],
                "description": preset["description"],
            }
        return initial

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        links = format_html_join(
            " · ", '<a href="?preset={}">{}</a>', ((k, p["name"]) for k, p in PRESETS.items())
        )
        extra_context = (extra_context or {}) | {"subtitle": format_html("Start from a preset: {}", links)}
        return super().add_view(request, form_url, extra_context)

    @admin.display(description="History (newest first)")
    def history(self, obj: RuleSet) -> str:
        return _history_table(
            list(obj.changes.select_related("changed_by").order_by("-revision")[:HISTORY_ROWS])
        )


@admin.register(AccountRuleSet)
class AccountRuleSetAdmin(admin.ModelAdmin):
    form = AccountRuleSetForm
    list_display = (
        "account",
        "rule_set",
        "initial_balance",
        "start",
        "revision",
        "assigned_by",
        "assigned_at",
    )
    list_select_related = ("account", "rule_set", "assigned_by")
    list_filter = ("rule_set",)
    search_fields = ("account__login", "rule_set__name")
    readonly_fields = ("revision", "assigned_by", "assigned_at", "history")

    def get_fields(self, request: HttpRequest, obj: AccountRuleSet | None = None) -> list[str]:
        fields = ["account", "rule_set", "initial_balance", "start"]
        if obj is None:
            return [*fields, "reason"]
        if self.has_change_permission(request, obj):
            fields.append("reason")
        return [*fields, "revision", "assigned_by", "assigned_at", "history"]

    def get_readonly_fields(self, request: HttpRequest, obj: AccountRuleSet | None = None) -> tuple[str, ...]:
        extra = ("account",) if obj is not None else ()
        return (*extra, *self.readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and cast(User, request.user).is_owner

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and cast(User, request.user).is_owner

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AccountRuleSet, form: Any, change: bool) -> None:
        data = form.cleaned_data
        stored = account_rule_set_assign(
            actor=cast(User, request.user),
            account=obj.account,
            rule_set=data["rule_set"],
            initial_balance=data["initial_balance"],
            start=data["start"],
            reason=data["reason"],
        )
        _copy_into(obj, stored)

    @admin.display(description="History (newest first)")
    def history(self, obj: AccountRuleSet) -> str:
        rows = AccountRuleSetChange.objects.filter(account_id=obj.account_id).select_related("changed_by")
        return _history_table(list(rows.order_by("-revision")[:HISTORY_ROWS]))


class ChangeHistoryAdmin(ReadOnlyAdmin):
    """A read-only change log of one subject (`subject`: the rule set, the account): who, when, why, old → new.
    A subclass names its subject; the columns and joins follow from it."""

    subject = ""
    date_hierarchy = "changed_at"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.list_display = (cls.subject, "revision", "changed_at", "changed_by", "changed", "reason")
        cls.list_select_related = (cls.subject, "changed_by")

    @admin.display(description="Old → new")
    def changed(self, obj: RuleSetChange | AccountRuleSetChange) -> str:
        return _diff(obj.old, obj.new)


@admin.register(RuleSetChange)
class RuleSetChangeAdmin(ChangeHistoryAdmin):
    subject = "rule_set"
    list_filter = ("rule_set",)


@admin.register(AccountRuleSetChange)
class AccountRuleSetChangeAdmin(ChangeHistoryAdmin):
    subject = "account"
    search_fields = ("account__login",)


@admin.register(AccountRulesState)
class AccountRulesStateAdmin(ReadOnlyAdmin):
    """The live evaluation per account (written by the guard pipeline). Close-only is lifted through the API
    (`POST /api/v1/rules/accounts/<id>/close-only/lift/`, a reason required)."""

    list_display = (
        "account",
        "status",
        "level",
        "permitted_loss_today",
        "permitted_loss_total",
        "daily_used_percent",
        "total_used_percent",
        "trading_days",
        "close_only",
        "evaluated_at",
    )
    list_filter = ("status", "level", "close_only")
    list_select_related = ("account",)
    search_fields = ("account__login",)
    exclude = ("state", "book")
