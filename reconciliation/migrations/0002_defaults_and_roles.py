"""Seed the default pip overrides (XAUUSD 0.1, XAGUSD 0.01 on every server) and what each role may do.

Owners do everything (and may write bot trades on any account, as may a bot's API user given
`reconciliation.write_any_account`); support reads everything and changes events (acknowledge, resolve);
traders read.
"""

from decimal import Decimal

from django.db import migrations

from core.roles import grant_role_permissions, model_permissions

MODELS = ("bottrade", "liveposition", "symboloverride", "reconciliationevent", "accountsync", "synccycle")

GRANTS = {
    "owner": [
        *(perm for model in MODELS for perm in model_permissions("reconciliation", model)),
        "reconciliation.write_any_account",
    ],
    "support": [
        *(f"reconciliation.view_{model}" for model in MODELS),
        "reconciliation.change_reconciliationevent",
    ],
    "trader": [f"reconciliation.view_{model}" for model in ("bottrade", "liveposition", "reconciliationevent")],
}

DEFAULT_PIPS = {"XAUUSD": Decimal("0.1"), "XAGUSD": Decimal("0.01")}


def install_defaults(apps, schema_editor):
    override_model = apps.get_model("reconciliation", "SymbolOverride")
    for name, pip in DEFAULT_PIPS.items():
        override_model.objects.get_or_create(
            account=None, server="", name=name, defaults={"canonical": name, "pip": pip}
        )
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(install_defaults, migrations.RunPython.noop)]
