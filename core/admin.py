from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (audit trails, logs, probe results): nobody adds, changes or deletes them
    in the admin; who may *view* them is the model's view permission."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def admin_actions_require_change_permission(site: admin.AdminSite) -> None:
    """Every admin action needs the model's change permission unless it declares its own (`permissions=[...]`):
    third-party admins (django-celery-beat's enable/disable/toggle/run periodic tasks) declare none, which Django
    reads as "anyone who sees the list" — view-only staff could run them."""
    for model_admin in site._registry.values():
        _guard_actions(model_admin)


def _guard_actions(model_admin: admin.ModelAdmin) -> None:
    original = model_admin.get_actions

    def get_actions(request: HttpRequest) -> dict[str, Any]:
        actions = original(request)
        if model_admin.has_change_permission(request):
            return actions
        return {
            name: action
            for name, action in actions.items()
            if getattr(action[0], "allowed_permissions", None)  # declared its own check
        }

    model_admin.get_actions = get_actions  # type: ignore[method-assign]
