"""Version 1 of the risk configuration with the spec's defaults, and what each role may do with the risk models.

Owners edit the configuration (a new version is an `add`; versions are never changed) and read the logs; support
reads both; traders read the configuration. `size_any_account` lets owners, support and the bot's API user (an
ordinary user the owner creates and gives this one permission) size any account; traders size their own only.
"""

from django.db import migrations

from core.roles import grant_role_permissions

GRANTS = {
    "owner": [
        "risk.add_riskconfigversion",
        "risk.view_riskconfigversion",
        "risk.view_tradesetuprisklog",
        "risk.size_any_account",
    ],
    "support": ["risk.view_riskconfigversion", "risk.view_tradesetuprisklog", "risk.size_any_account"],
    "trader": ["risk.view_riskconfigversion"],
}


def install_defaults(apps, schema_editor):
    config_model = apps.get_model("risk", "RiskConfigVersion")
    if not config_model.objects.exists():
        config_model.objects.create(
            version=1,
            previous=None,
            risk_percent="3.00",
            entry_splits=["50", "35", "15"],
            margin_buffer_percent="20.00",
            max_snapshot_age_seconds=300,
            changed_by=None,
            reason="Defaults from shared/spec/sizing.md.",
        )
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(install_defaults, migrations.RunPython.noop)]
