from decimal import Decimal

import factory

from accounts.tests.factories import TradingAccountFactory, UserFactory
from risk.models import TradeSetupRiskLog


class TradeSetupRiskLogFactory(factory.django.DjangoModelFactory):
    """A logged request; `config` must be given (the version in force: risk.selectors.risk_config_current())."""

    class Meta:
        model = TradeSetupRiskLog

    account = factory.SubFactory(TradingAccountFactory)
    requested_by = factory.SubFactory(UserFactory)
    inputs = factory.LazyFunction(
        lambda: {"symbol": "EURUSD", "side": "buy", "entries": ["1.0850"], "sl": str(Decimal("1.0800"))}
    )
    result = None
    approved = False
    reason = "stale_account"
