import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from reconciliation.services import SYNC_PERIODIC_TASK_NAME, sync_interval_seconds

pytestmark = pytest.mark.django_db


def test_declares_the_account_sync_cycle_every_10_seconds():
    call_command("setup_periodic_tasks", stdout=None)
    task = PeriodicTask.objects.get(name=SYNC_PERIODIC_TASK_NAME)
    assert task.task == "pipeline.tasks.accounts_sync_cycle"
    assert (task.interval.every, task.interval.period) == (10, IntervalSchedule.SECONDS)
    assert task.enabled
    assert task.expire_seconds == 10


def test_is_idempotent():
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.filter(name=SYNC_PERIODIC_TASK_NAME).count() == 1
    assert IntervalSchedule.objects.filter(every=10, period=IntervalSchedule.SECONDS).count() == 1


def test_keeps_an_interval_edited_in_the_admin_unless_reset():
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name=SYNC_PERIODIC_TASK_NAME)
    task.interval = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    task.save()

    call_command("setup_periodic_tasks")
    assert sync_interval_seconds() == 30

    call_command("setup_periodic_tasks", "--reset-intervals")
    assert sync_interval_seconds() == 10


def test_declares_the_close_intent_recovery_every_minute():
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name="guards: complete close intents")
    assert task.task == "guards.tasks.close_intents_complete"
    assert (task.interval.every, task.interval.period) == (60, IntervalSchedule.SECONDS)
    assert task.expire_seconds == 60
    assert PeriodicTask.objects.filter(task="guards.tasks.close_intents_complete").count() == 1


def test_a_schedule_declared_before_the_pipeline_moved_points_at_the_new_task():
    """Beat rows created when the sync task lived in reconciliation are rewritten in place (same row, same
    interval an owner may have chosen), so the beat never sends a task name no worker knows."""
    old = PeriodicTask.objects.create(
        name=SYNC_PERIODIC_TASK_NAME,
        task="reconciliation.tasks.accounts_sync_cycle",
        interval=IntervalSchedule.objects.create(every=20, period=IntervalSchedule.SECONDS),
    )
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name=SYNC_PERIODIC_TASK_NAME)
    assert task.pk == old.pk
    assert task.task == "pipeline.tasks.accounts_sync_cycle"
    assert task.interval.every == 20
