"""The margin mode the terminal reports (account_info().margin_mode), on each snapshot and on the account."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_alter_tradingaccount_backend'),
    ]

    operations = [
        migrations.AddField(
            model_name='accountsnapshot',
            name='margin_mode',
            field=models.CharField(choices=[('hedging', 'Hedging (one position per trade)'), ('netting', 'Netting (one position per symbol)'), ('exchange', 'Exchange (netting, one position per symbol)')], default='hedging', max_length=8),
        ),
        migrations.AddField(
            model_name='tradingaccount',
            name='margin_mode',
            field=models.CharField(choices=[('hedging', 'Hedging (one position per trade)'), ('netting', 'Netting (one position per symbol)'), ('exchange', 'Exchange (netting, one position per symbol)')], default='hedging', editable=False, help_text='As the terminal last reported it (account_info().margin_mode); reconciliation follows it.', max_length=8),
        ),
    ]
