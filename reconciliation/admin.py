"""Admin for reconciliation: events support staff work with, and read-only views of what the sync stores.

* Events: filters (account, kind, state, symbol, date, still present), actions "acknowledge" and "resolve" that ask
  for a note on an intermediate page and go through the services; only users with change permission on events
  (owners, support) get the actions; fields are never edited by hand.
* Bot trades come from the bot's API: read-only here, plus a "mark closed" action for owners.
* Symbol overrides: owners edit them (canonical name, pip), support reads them.
* Sync runs and sync cycles (scheduler status): read-only for owners and support.
* Net matches (netting accounts): read-only, each with its group's bot trades and the events of its position.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin
from core.api.auth import authenticated_user
from core.exceptions import ApplicationError
from reconciliation.models import (
    AccountSync,
    BotTrade,
    BotTradeStatus,
    LivePosition,
    NetMatch,
    ReconciliationEvent,
    SymbolOverride,
    SyncCycle,
)
from reconciliation.services import bot_trade_close, event_acknowledge, event_resolve
from reconciliation.services.events import NOTE_MAX_LENGTH, NOTE_REQUIRED


class EventNoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), required=False, max_length=NOTE_MAX_LENGTH
    )

    def __init__(self, *args: Any, note_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].required = note_required


class PresentFilter(admin.SimpleListFilter):
    title = "still present"
    parameter_name = "present"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Still present"), ("no", "Gone")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(gone_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(gone_at__isnull=False)
        return queryset


def _note_action(
    modeladmin: "ReconciliationEventAdmin",
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    note_required: bool,
    apply: Any,
) -> HttpResponse | None:
    """The intermediate page of an action: ask for the note, then apply the service to every selected event."""
    form = EventNoteForm(request.POST if "apply" in request.POST else None, note_required=note_required)
    if "apply" in request.POST and form.is_valid():
        done, refused = 0, []
        for event in queryset:
            try:
                apply(event=event, actor=authenticated_user(request), note=form.cleaned_data["note"])
                done += 1
            except (ApplicationError, ValidationError) as exc:
                refused.append(f"#{event.pk}: {getattr(exc, 'message', exc)}")
        if done:
            modeladmin.message_user(request, f"{done} event(s) {action}d.", messages.SUCCESS)
        if refused:
            modeladmin.message_user(request, "Not changed: " + "; ".join(refused), messages.WARNING)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "events": queryset,
        "form": form,
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
    }
    return TemplateResponse(request, "admin/reconciliation/reconciliationevent/note_action.html", context)


@admin.register(ReconciliationEvent)
class ReconciliationEventAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "account",
        "kind",
        "state",
        "symbol",
        "ticket",
        "bot_trade",
        "present",
        "first_seen_at",
        "last_seen_at",
        "gone_at",
        "occurrences",
    )
    list_filter = (
        ("account", admin.RelatedOnlyFieldListFilter),
        "kind",
        "state",
        PresentFilter,
        ("symbol", admin.AllValuesFieldListFilter),
        ("first_seen_at", admin.DateFieldListFilter),
    )
    date_hierarchy = "first_seen_at"
    search_fields = ("symbol", "=ticket", "bot_trade__signal_id", "=account__login", "note")
    list_select_related = ("account", "bot_trade")
    actions = ("acknowledge", "resolve")
    readonly_fields = [field.name for field in ReconciliationEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ):
        # The change permission is what allows the actions; the page itself is always read-only.
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(boolean=True, description="present")
    def present(self, obj: ReconciliationEvent) -> bool:
        return obj.is_present

    @admin.action(description="Acknowledge selected events (with a note)", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _note_action(
            self,
            request,
            queryset,
            action="acknowledge",
            title="Acknowledge events",
            note_required=NOTE_REQUIRED["acknowledge"],
            apply=event_acknowledge,
        )

    @admin.action(description="Resolve selected events (with a note)", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _note_action(
            self,
            request,
            queryset,
            action="resolve",
            title="Resolve events",
            note_required=NOTE_REQUIRED["resolve"],
            apply=event_resolve,
        )


@admin.register(BotTrade)
class BotTradeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "signal_id",
        "leg",
        "symbol",
        "side",
        "volume",
        "entry_price",
        "sl",
        "tp",
        "ticket",
        "matched_ticket",
        "net_match",
        "status",
        "closed_by",
        "created_at",
    )
    list_filter = (("account", admin.RelatedOnlyFieldListFilter), "status", "side", "closed_by", "symbol")
    search_fields = ("signal_id", "approval_id", "tag", "=ticket", "=matched_ticket")
    list_select_related = ("account",)
    actions = ("mark_closed",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only for the action; the form stays read-only (see ReadOnlyAdmin for add/delete).
        return obj is None and admin.ModelAdmin.has_change_permission(self, request, obj)

    @admin.action(description="Mark selected bot trades closed", permissions=["change"])
    def mark_closed(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for trade in queryset.filter(status=BotTradeStatus.OPEN):
            bot_trade_close(bot_trade=trade, actor=authenticated_user(request))
            count += 1
        self.message_user(request, f"{count} bot trade(s) marked closed.", messages.SUCCESS)


@admin.register(LivePosition)
class LivePositionAdmin(ReadOnlyAdmin):
    list_display = (
        "ticket",
        "account",
        "symbol",
        "canonical_symbol",
        "side",
        "volume",
        "price_open",
        "price_current",
        "sl",
        "tp",
        "profit",
        "bot_trade",
        "match_method",
        "opened_at",
        "last_seen_at",
    )
    list_filter = (("account", admin.RelatedOnlyFieldListFilter), "side", "canonical_symbol", "match_method")
    search_fields = ("=ticket", "symbol", "comment")
    list_select_related = ("account", "bot_trade")


@admin.register(SymbolOverride)
class SymbolOverrideAdmin(admin.ModelAdmin):
    list_display = ("name", "canonical", "pip", "server", "account", "updated_at")
    list_filter = ("server",)
    search_fields = ("name", "canonical")
    raw_id_fields = ("account",)
    fields = ("name", "canonical", "pip", "server", "account")


@admin.register(AccountSync)
class AccountSyncAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "account",
        "ok",
        "duration_ms",
        "positions",
        "matched",
        "unmatched",
        "missing",
        "events_opened",
        "events_gone",
        "error_class",
        "error_message",
        "reconciliation_error",
        "guards_error",
    )
    list_filter = ("ok", "error_class", ("account", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "started_at"
    list_select_related = ("account",)


@admin.register(SyncCycle)
class SyncCycleAdmin(ReadOnlyAdmin):
    """Scheduler status: one row per cycle, newest first. Counts of a cycle are recounted from the durable records by
    the following cycles (final once `closed`); `not run` are syncs that expired in the queue or were lost; a `missed`
    row stands for cycles that never ran while the broker or the database was down."""

    list_display = (
        "started_at",
        "interval_seconds",
        "lag_seconds",
        "queue_lag_seconds",
        "queue_lag_max_seconds",
        "duration",
        "accounts",
        "synced",
        "failed",
        "skipped",
        "not_run_count",
        "missed_cycles",
        "closed",
    )
    list_filter = ("closed", "missed")
    date_hierarchy = "started_at"

    @admin.display(description="duration (s)")
    def duration(self, obj: SyncCycle) -> Any:
        return obj.duration_seconds

    @admin.display(description="not run")
    def not_run_count(self, obj: SyncCycle) -> int:
        return obj.not_run


class NetMatchBotTradeInline(admin.TabularInline):
    model = BotTrade
    fk_name = "net_match"
    fields = ("signal_id", "leg", "side", "volume", "entry_price", "sl", "tp", "ticket", "tag", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NetMatch)
class NetMatchAdmin(ReadOnlyAdmin):
    """What support staff look at on a netting account: the group, its position, what differs, and the events."""

    list_display = (
        "account",
        "canonical_symbol",
        "ticket",
        "side",
        "net_volume",
        "position_volume",
        "divergence_kinds",
        "last_seen_at",
    )
    list_filter = (("account", admin.RelatedOnlyFieldListFilter), "canonical_symbol", "side")
    search_fields = ("=ticket", "canonical_symbol", "bot_trades__signal_id")
    list_select_related = ("account",)
    readonly_fields = ("events",)
    inlines = (NetMatchBotTradeInline,)

    @admin.display(description="Divergences")
    def divergence_kinds(self, obj: NetMatch) -> str:
        return ", ".join(d["kind"] for d in obj.divergences) or "-"

    @admin.display(description="Events of this position")
    def events(self, obj: NetMatch) -> str:
        events = ReconciliationEvent.objects.filter(account_id=obj.account_id, ticket=obj.ticket).order_by(
            "-first_seen_at"
        )[:20]
        if not events:
            return "-"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> ({})',
            (
                (
                    reverse("admin:reconciliation_reconciliationevent_change", args=[e.pk]),
                    e,
                    e.get_state_display(),
                )
                for e in events
            ),
        )
