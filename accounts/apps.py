from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import (
            checks,  # noqa: F401 - registers the start-up checks
            signals,  # noqa: F401 - access-cache invalidation (core/readcache.py)
        )
