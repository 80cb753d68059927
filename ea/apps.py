from django.apps import AppConfig


class EaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ea"
    verbose_name = "EA links (accounts whose Expert Advisor pushes to us)"

    def ready(self) -> None:
        from ea.store import DatabaseEaStore
        from integrations.mt5.ea.store import store_register

        store_register(DatabaseEaStore())
