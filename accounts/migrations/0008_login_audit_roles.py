from django.db import migrations

from core.roles import grant_role_permissions

# The login audit of django-axes: owners and support read it; owners may delete a lockout row (that unlocks).
GRANTS = {
    "owner": [
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "axes.view_accessfailurelog",
        "axes.view_accesslog",
    ],
    "support": ["axes.view_accessattempt", "axes.view_accessfailurelog", "axes.view_accesslog"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_backend_default_and_broker_clock"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
