"""The trader role holds no admin permission: traders use the API and the pages, scoped by selectors."""

from django.db import migrations


def clear_trader_permissions(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    group = group_model.objects.filter(name="trader").first()
    if group is not None:
        group.permissions.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_login_audit_roles"),
        ("ea", "0002_roles"),
        ("reconciliation", "0005_net_match"),
        ("risk", "0002_defaults_and_roles"),
        ("guards", "0002_defaults_and_roles"),
    ]

    operations = [migrations.RunPython(clear_trader_permissions, migrations.RunPython.noop)]
