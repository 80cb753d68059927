from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Fail at start-up, not at the first save, when the credentials key is missing or malformed.
        from core.crypto import credentials_cipher

        credentials_cipher()

        # The admin registry is complete here (django.contrib.admin autodiscovers in its ready(), which runs first).
        from django.contrib import admin

        from core.admin import admin_actions_require_change_permission

        admin_actions_require_change_permission(admin.site)

        # Timestamps from PostgreSQL parsed in C (Django's loader falls back to Python; core/pgtypes.py).
        from core.pgtypes import timestamptz_loader_install

        timestamptz_loader_install()
