from decimal import Decimal

import factory

from accounts.tests.factories import TradingAccountFactory
from reconciliation.models import BotTrade


class BotTradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BotTrade

    account = factory.SubFactory(TradingAccountFactory)
    signal_id = factory.Sequence(lambda n: f"sig-{n}")
    leg = 1
    symbol = "EURUSD"
    side = "buy"
    volume = Decimal("0.50")
    entry_price = Decimal("1.08500")
