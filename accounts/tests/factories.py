from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import AccountSnapshot, TradingAccount, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")


class TradingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradingAccount

    owner = factory.SubFactory(UserFactory)
    login = factory.Sequence(lambda n: 500_000 + n)
    server = "Sim-Demo"


class AccountSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountSnapshot

    account = factory.SubFactory(TradingAccountFactory)
    balance = Decimal("10000.00")
    equity = Decimal("10000.00")
    margin = Decimal("0.00")
    margin_free = Decimal("10000.00")
    currency = "USD"
    taken_at = factory.LazyFunction(timezone.now)
    server_time = factory.LazyFunction(timezone.now)
