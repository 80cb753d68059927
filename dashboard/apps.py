from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The pages people keep open: overview, account, guard banner, live partials over Channels.

    An interface app above accounts, reconciliation, guards and risk: it reads through their selectors (and its own
    cross-app page selectors) and writes only through their services."""

    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dashboard import signals  # noqa: F401  (registers the logout receiver)
