"""Grant model permissions to the role groups from data migrations.

Each app's data migration names what owner/support/trader may do with its models; permissions are created first
because Django normally creates them only after all migrations (post_migrate).
"""

from typing import Any

ROLE_NAMES = ("owner", "support", "trader")


def grant_role_permissions(apps: Any, grants: dict[str, list[str]]) -> None:
    """grants: {"support": ["accounts.view_tradingaccount", ...]}. Idempotent."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, perms in grants.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )


def model_permissions(
    app_label: str, model: str, actions: tuple[str, ...] = ("add", "change", "delete", "view")
) -> list[str]:
    return [f"{app_label}.{action}_{model}" for action in actions]
