import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("mt5guard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _loaded_objects_freeze(**_kwargs: object) -> None:
    from core.process import loaded_objects_freeze

    loaded_objects_freeze()
