"""NetMatch (netting accounts: a symbol's bot trades and the position they net to), readable by every role."""

import django.db.models.deletion
from django.db import migrations, models

from core.roles import grant_role_permissions

GRANTS = {role: ["reconciliation.view_netmatch"] for role in ("owner", "support", "trader")}


def grant_view(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_roles'),
        ('reconciliation', '0004_accountsync_step_errors'),
    ]

    operations = [
        migrations.CreateModel(
            name='NetMatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('canonical_symbol', models.CharField(max_length=32)),
                ('ticket', models.PositiveBigIntegerField(help_text="The symbol's position.")),
                ('side', models.CharField(choices=[('buy', 'Buy'), ('sell', 'Sell')], help_text='Direction of the net expected volume.', max_length=4)),
                ('net_volume', models.DecimalField(decimal_places=4, help_text="|buys - sells| of the group's bot trades.", max_digits=14)),
                ('position_volume', models.DecimalField(decimal_places=4, max_digits=14)),
                ('divergences', models.JSONField(blank=True, default=list)),
                ('first_seen_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='net_matches', to='accounts.tradingaccount')),
            ],
            options={
                'verbose_name_plural': 'net matches',
                'ordering': ['account', 'canonical_symbol'],
            },
        ),
        migrations.AddField(
            model_name='bottrade',
            name='net_match',
            field=models.ForeignKey(blank=True, editable=False, help_text="Netting accounts: the group this trade belongs to while it is matched to its symbol's position.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bot_trades', to='reconciliation.netmatch'),
        ),
        migrations.AddConstraint(
            model_name='netmatch',
            constraint=models.UniqueConstraint(fields=('account', 'canonical_symbol'), name='uniq_netmatch_account_symbol'),
        ),
        migrations.RunPython(grant_view, migrations.RunPython.noop),
    ]
