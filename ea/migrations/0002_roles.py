"""Owners issue, rotate and read EA keys' state; support reads the state (never a secret: none is stored in clear)."""

from django.db import migrations

from core.roles import grant_role_permissions

GRANTS = {
    "owner": ["ea.add_ealink", "ea.change_ealink", "ea.view_ealink", "ea.view_eacommand"],
    "support": ["ea.view_ealink", "ea.view_eacommand"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("ea", "0001_initial"), ("accounts", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
