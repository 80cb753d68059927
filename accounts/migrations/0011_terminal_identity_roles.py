"""Owners and support confirm a held account's terminal identity (as they reset guards); both read the audit."""

from django.db import migrations

from core.roles import grant_role_permissions

GRANTS = {
    "owner": ["accounts.confirm_terminal_identity", "accounts.view_terminalidentityevent"],
    "support": ["accounts.confirm_terminal_identity", "accounts.view_terminalidentityevent"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_terminal_identity")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
