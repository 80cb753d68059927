from django.db import migrations

from core.roles import grant_role_permissions

GRANTS = {
    "owner": ["accounts.view_accounthealth"],
    "support": ["accounts.view_accounthealth"],
    "trader": ["accounts.view_accounthealth"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_account_health")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
