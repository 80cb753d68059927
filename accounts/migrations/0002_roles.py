"""The three roles as groups, with what each may do in the admin. Other apps grant their own models' permissions."""

from django.db import migrations

from core.roles import grant_role_permissions, model_permissions

GRANTS = {
    "owner": [
        *model_permissions("accounts", "user"),
        *model_permissions("auth", "group", ("view",)),
        *model_permissions("accounts", "tradingaccount"),
        *model_permissions("accounts", "accountsnapshot"),
        *model_permissions("django_celery_beat", "periodictask"),
        *model_permissions("django_celery_beat", "intervalschedule"),
        *model_permissions("django_celery_beat", "crontabschedule"),
    ],
    "support": [
        "accounts.view_user",
        "accounts.view_tradingaccount",
        "accounts.view_accountsnapshot",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.view_intervalschedule",
    ],
    "trader": ["accounts.view_tradingaccount", "accounts.view_accountsnapshot"],
}


def create_roles(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
