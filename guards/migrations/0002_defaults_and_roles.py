"""The global guard settings with the spec's defaults, and what each role may do with the guard models.

Owners edit the settings (global and per-account) and may reset a guard; support staff read everything (state,
alerts, close intents, settings and their history) and may reset a guard with a reason; traders get nothing here.
"""

from django.db import migrations

from core.roles import grant_role_permissions, model_permissions

READ_ONLY = ["guardsettingschange", "guardstate", "guardalert", "closeintent"]
EDITABLE = ["guardsettings", "accountguardsettings"]

GRANTS = {
    "owner": [
        *(p for model in EDITABLE for p in model_permissions("guards", model)),
        *(f"guards.view_{model}" for model in READ_ONLY),
        "guards.reset_guard",
    ],
    "support": [
        *(f"guards.view_{model}" for model in EDITABLE + READ_ONLY),
        "guards.reset_guard",
    ],
    "trader": [],
}


def install_defaults(apps, schema_editor):
    settings_model = apps.get_model("guards", "GuardSettings")
    settings_model.objects.get_or_create(pk=1)
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("guards", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(install_defaults, migrations.RunPython.noop)]
