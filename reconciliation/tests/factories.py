from datetime import UTC, datetime
from decimal import Decimal

import factory

from accounts.tests.factories import TradingAccountFactory
from reconciliation.models import BotTrade, LivePosition


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


class LivePositionFactory(factory.django.DjangoModelFactory):
    """An open position as the last sync stored it."""

    class Meta:
        model = LivePosition

    account = factory.SubFactory(TradingAccountFactory)
    ticket = factory.Sequence(lambda n: 500_000 + n)
    symbol = "EURUSD"
    canonical_symbol = "EURUSD"
    side = "buy"
    volume = Decimal("1.00")
    price_open = Decimal("1.08500")
    price_current = Decimal("1.08600")
    profit = Decimal("100.00")
    opened_at = factory.LazyFunction(lambda: datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    opened_at_server_epoch = factory.LazyAttribute(lambda o: int(o.opened_at.timestamp()) + 7200)
    first_seen_at = factory.LazyAttribute(lambda o: o.opened_at)
    last_seen_at = factory.LazyAttribute(lambda o: o.opened_at)
