"""The preset rule sets (a frozen copy of rules/presets.py; a test keeps them equal) and what each role may do
with the rule-set models: owners create and edit rule sets and assignments; support reads everything; traders get
no admin permission (they see their own account's rule set through the API and the pages)."""

from django.db import migrations
from django.utils import timezone

from core.roles import grant_role_permissions

GRANTS = {
    "owner": [
        "rules.add_ruleset",
        "rules.change_ruleset",
        "rules.view_ruleset",
        "rules.view_rulesetchange",
        "rules.add_accountruleset",
        "rules.change_accountruleset",
        "rules.view_accountruleset",
        "rules.view_accountrulesetchange",
    ],
    "support": [
        "rules.view_ruleset",
        "rules.view_rulesetchange",
        "rules.view_accountruleset",
        "rules.view_accountrulesetchange",
    ],
}

PRESETS = {'two_step': {'name': 'Two-step challenge',
              'description': '5 % daily loss of the initial balance from midnight Europe/Prague on the '
                             'balance, 10 % static maximum loss, 10 % profit target, 4 trading days.',
              'kind': 'limits',
              'timezone': 'Europe/Prague',
              'reset_time': '00:00',
              'daily_loss_percent': '5',
              'daily_loss_of': 'initial',
              'daily_loss_base': 'balance',
              'max_loss_percent': '10',
              'max_loss_mode': 'static',
              'max_loss_lock_at_initial': True,
              'profit_target_percent': '10',
              'min_trading_days': 4,
              'best_day_percent': None,
              'warn_at_percent_used': '80',
              'close_only_on_warning': False},
 'one_step': {'name': 'One-step challenge',
              'description': '3 % daily loss of the initial balance from midnight Europe/Prague, 6 % '
                             'end-of-day trailing maximum loss locking at the initial balance, 10 % profit '
                             'target, best day at most 50 % of the profit.',
              'kind': 'limits',
              'timezone': 'Europe/Prague',
              'reset_time': '00:00',
              'daily_loss_percent': '3',
              'daily_loss_of': 'initial',
              'daily_loss_base': 'balance',
              'max_loss_percent': '6',
              'max_loss_mode': 'eod_trailing',
              'max_loss_lock_at_initial': True,
              'profit_target_percent': '10',
              'min_trading_days': 0,
              'best_day_percent': '50',
              'warn_at_percent_used': '80',
              'close_only_on_warning': False},
 'ny_close': {'name': 'New York close (17:00), higher of balance and equity',
              'description': 'Days reset at 17:00 America/New_York; 5 % daily loss of the initial balance '
                             'from the higher of balance and equity at the reset, 10 % static maximum loss, '
                             '8 % profit target, 3 trading days.',
              'kind': 'limits',
              'timezone': 'America/New_York',
              'reset_time': '17:00',
              'daily_loss_percent': '5',
              'daily_loss_of': 'initial',
              'daily_loss_base': 'max',
              'max_loss_percent': '10',
              'max_loss_mode': 'static',
              'max_loss_lock_at_initial': True,
              'profit_target_percent': '8',
              'min_trading_days': 3,
              'best_day_percent': None,
              'warn_at_percent_used': '80',
              'close_only_on_warning': False},
 'classic': {'name': 'Classic guards',
             'description': 'No funded-account limits: the drawdown and daily-loss guards of the guard '
                            'settings, as every account without a rule set has.',
             'kind': 'classic',
             'timezone': 'UTC',
             'reset_time': '00:00',
             'daily_loss_percent': None,
             'daily_loss_of': 'initial',
             'daily_loss_base': 'balance',
             'max_loss_percent': None,
             'max_loss_mode': 'static',
             'max_loss_lock_at_initial': True,
             'profit_target_percent': None,
             'min_trading_days': 0,
             'best_day_percent': None,
             'warn_at_percent_used': '80',
             'close_only_on_warning': False}}


def install(apps, schema_editor):
    rule_set_model = apps.get_model("rules", "RuleSet")
    change_model = apps.get_model("rules", "RuleSetChange")
    now = timezone.now()
    for key, preset in PRESETS.items():
        if rule_set_model.objects.filter(preset=key).exists():
            continue
        row = rule_set_model.objects.create(preset=key, revision=1, **preset)
        terms = {name: value for name, value in preset.items()}
        change_model.objects.create(
            rule_set=row, revision=1, old=None, new=terms, changed_by=None, changed_at=now,
            reason="Preset installed by the migration (docs/GUARDS.md, Rule sets).",
        )
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
