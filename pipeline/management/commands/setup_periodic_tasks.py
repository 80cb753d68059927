"""Declare every periodic task once (run on deploy and by `make run`). Idempotent: update_or_create by name.

HackSoft style: one list of dicts. The interval is only set when the task is first created, so an interval an
owner changed in the admin (django-celery-beat) survives later deploys; pass --reset-intervals to force the
declared ones back.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from guards.tasks import GUARDS_PERIODIC_TASKS
from reconciliation.conf import setting
from reconciliation.services import SYNC_PERIODIC_TASK_NAME


def periodic_tasks() -> list[dict[str, Any]]:
    interval = int(setting("RECONCILIATION_SYNC_INTERVAL_SECONDS"))
    return [
        {
            "name": SYNC_PERIODIC_TASK_NAME,
            "task": "pipeline.tasks.accounts_sync_cycle",
            "every": interval,
            "period": IntervalSchedule.SECONDS,
            # A cycle that could not start before the next one is due is dropped, not queued up.
            "expire_seconds": interval,
            "description": "Fan out one terminal sync per active account (reconciliation, snapshots, guards).",
        },
        {
            "name": "accounts: probe terminal health",
            "task": "accounts.tasks.account_health_probe_cycle",
            "every": settings.ACCOUNT_HEALTH_PROBE_SECONDS,
            "period": IntervalSchedule.SECONDS,
            "expire_seconds": settings.ACCOUNT_HEALTH_PROBE_SECONDS,
            "description": "Probe every active account's terminal link (connected, trading allowed, ping, tick age).",
        },
        *(
            {
                "period": IntervalSchedule.SECONDS,
                # Expire before the next run is due, so a backlog never piles up behind a stopped worker.
                "expire_seconds": spec["every"],
                **spec,
            }
            for spec in GUARDS_PERIODIC_TASKS
        ),
    ]


class Command(BaseCommand):
    help = (
        "Create or update the periodic tasks (celery beat schedule in the database). Safe to run repeatedly."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset-intervals",
            action="store_true",
            help="Also put back the declared intervals on tasks that already exist.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for spec in periodic_tasks():
            # Several tasks (or an owner in the admin) may share or duplicate an interval row: reuse the first.
            schedule = IntervalSchedule.objects.filter(every=spec["every"], period=spec["period"]).order_by(
                "pk"
            ).first() or IntervalSchedule.objects.create(every=spec["every"], period=spec["period"])
            existing = PeriodicTask.objects.filter(name=spec["name"]).first()
            defaults = {
                "task": spec["task"],
                "expire_seconds": spec["expire_seconds"],
                "description": spec["description"],
            }
            if existing is None or existing.interval is None or options["reset_intervals"]:
                defaults.update(interval=schedule, crontab=None, solar=None, clocked=None)
            task, created = PeriodicTask.objects.update_or_create(name=spec["name"], defaults=defaults)
            self.stdout.write(f"{'created' if created else 'up to date'}: {task.name} ({task.interval})")
