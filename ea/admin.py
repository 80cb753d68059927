"""EA keys in the admin. Adding a link issues a key and shows its secret once, on the page that answers the save;
rotating does the same. Nothing stores or shows the secret afterwards. Pushes and commands are read-only."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import GatewayBackend
from core.admin import ReadOnlyAdmin
from ea.models import EaCommand, EaLink
from ea.services import IssuedKey, ea_link_create, ea_link_rotate
from integrations.mt5.ea import protocol


class EaLinkAddForm(forms.ModelForm):
    class Meta:
        model = EaLink
        fields = ["account", "fresh_for_seconds"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = self.fields["account"].queryset.filter(  # type: ignore[attr-defined]
            backend=GatewayBackend.EA, ea_link__isnull=True
        )
        self.fields["account"].help_text = "Accounts on the 'ea' backend that have no key yet."

    def clean_fresh_for_seconds(self) -> int:
        value = self.cleaned_data["fresh_for_seconds"]
        if not 15 <= value <= 3600:
            raise forms.ValidationError("Between 15 and 3600 seconds.")
        return int(value)


def _key_page(request: HttpRequest, link: EaLink, key: IssuedKey) -> HttpResponse:
    return TemplateResponse(
        request,
        "admin/ea/key_issued.html",
        {
            "title": f"EA key for {link.account}",
            "link": link,
            "key": key,
            "push_path": protocol.PUSH_PATH,
            "opts": EaLink._meta,
        },
    )


@admin.register(EaLink)
class EaLinkAdmin(admin.ModelAdmin):
    list_display = ["account", "key_id", "last_push_at", "ea_version", "pushes_accepted", "pushes_refused",
                    "last_refusal"]  # fmt: skip
    readonly_fields = ["account", "key_id", "secret_rotated_at", "ea_version", "last_push_at",
                       "last_push_server_time_msc", "pushes_accepted", "pushes_refused", "last_refusal",
                       "last_refusal_at"]  # fmt: skip
    fields = ["account", "fresh_for_seconds", *readonly_fields[1:]]
    actions = ["rotate_key"]
    search_fields = ["account__login", "account__server", "key_id"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = EaLinkAddForm
            kwargs["fields"] = ["account", "fresh_for_seconds"]
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ["account", "fresh_for_seconds"]

    def save_model(self, request: HttpRequest, obj: EaLink, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["fresh_for_seconds", "updated_at"])
            return
        link, key = ea_link_create(account=obj.account, fresh_for_seconds=obj.fresh_for_seconds)
        obj.pk, obj._issued_key = link.pk, key  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: EaLink, post_url_continue: str | None = None
    ) -> HttpResponse:
        return _key_page(request, EaLink.objects.get(pk=obj.pk), obj._issued_key)  # type: ignore[attr-defined]

    @admin.action(description="Rotate the key (the old one stops working; the new secret is shown once)",
                  permissions=["change"])  # fmt: skip
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[EaLink]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Rotate one key at a time.", messages.WARNING)
            return None
        link = queryset.get()
        return _key_page(request, link, ea_link_rotate(link=link))


@admin.register(EaCommand)
class EaCommandAdmin(ReadOnlyAdmin):
    list_display = ["pk", "link", "position_ticket", "state", "deadline", "fetched_at", "answered_at",
                    "answered_late", "fetch_count"]  # fmt: skip
    list_filter = ["state", "answered_late"]
    search_fields = ["link__account__login", "position_ticket"]
