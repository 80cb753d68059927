"""Who sees the live rules state and who may lift close-only: owners and support (as for guard resets)."""

from django.db import migrations

from core.roles import grant_role_permissions

GRANTS = {
    "owner": ["rules.view_accountrulesstate", "rules.lift_close_only"],
    "support": ["rules.view_accountrulesstate", "rules.lift_close_only"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("rules", "0003_account_rules_state")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
