import pytest
from django.core.cache import cache

from accounts.tests.factories import TradingAccountFactory
from reconciliation.symbols import OVERRIDES_CACHE_KEY
from reconciliation.tests.fakes import FakeGateway


@pytest.fixture(autouse=True)
def _recon_settings(settings):
    # Bot trades in tests are "old enough" to be reported missing at once; the grace has its own test.
    settings.RECONCILIATION_MISSING_GRACE_SECONDS = 0
    cache.delete(OVERRIDES_CACHE_KEY)
    yield
    cache.delete(OVERRIDES_CACHE_KEY)


@pytest.fixture
def account(db):
    account = TradingAccountFactory()
    cache.delete_many([f"recon:deals-cursor:{account.pk}", f"recon:lock:account:{account.pk}"])
    return account


@pytest.fixture
def gateway(account) -> FakeGateway:
    return FakeGateway(login=account.login, server=account.server)
