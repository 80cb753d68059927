from django.db import migrations

from core.roles import grant_role_permissions, model_permissions

GRANTS = {
    "owner": [
        "notifications.view_notification",
        "notifications.change_notification",  # the admin's "retry now"
        "notifications.view_deliveryattempt",
        *model_permissions("notifications", "webhookendpoint"),
        *model_permissions("notifications", "telegramchat"),
        *model_permissions("notifications", "notificationpreference"),
    ],
    "support": [
        "notifications.view_notification",
        "notifications.change_notification",
        "notifications.view_deliveryattempt",
        "notifications.view_telegramchat",
        "notifications.view_notificationpreference",
    ],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial"), ("accounts", "0002_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
