from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """The orchestrator above accounts, reconciliation and guards: the account sync (read once, then snapshot →
    reconciliation → guards), its schedule, the scenario runner and the development commands."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipeline"
