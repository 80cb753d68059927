from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from reconciliation.models import SymbolOverride
        from reconciliation.symbols import symbol_overrides_invalidate

        def invalidate(**kwargs: object) -> None:
            symbol_overrides_invalidate()

        # Cache invalidation is the one use of signals here: every save path (admin, services, shell) is covered.
        post_save.connect(invalidate, sender=SymbolOverride, weak=False, dispatch_uid="recon-overrides-save")
        post_delete.connect(
            invalidate, sender=SymbolOverride, weak=False, dispatch_uid="recon-overrides-delete"
        )
