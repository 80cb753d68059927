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
    from pipeline.services.scheduling import account_lock_key, lock_client

    lock_client().delete(account_lock_key(account.pk))
    return account


@pytest.fixture
def gateway(account) -> FakeGateway:
    return FakeGateway(login=account.login, server=account.server)


class SimAccount:
    """A trading account with its own simulated terminal, reached through the real gateway stack
    (TerminalGateway mapping + ManagedGateway reconnects and circuit breaker)."""

    def __init__(self, account, terminal, *, reset_seconds: float = 30.0) -> None:
        from integrations.mt5.circuit import Backoff, CircuitBreaker, MemoryBreakerStore
        from integrations.mt5.sessions import ManagedGateway
        from integrations.mt5.terminal import TerminalGateway

        self.account = account
        self.terminal = terminal
        inner = TerminalGateway(
            terminal,
            login=account.login,
            password="sim-pass",
            server=account.server,
            clock=lambda: terminal.clock.utc_ms() / 1000,
        )
        self.breaker = CircuitBreaker(
            f"test-account-{account.pk}",
            store=MemoryBreakerStore(),
            failure_threshold=3,
            reset_seconds=reset_seconds,
        )
        self.gateway = ManagedGateway(
            inner,
            account_key=f"test-account-{account.pk}",
            breaker=self.breaker,
            backoff=Backoff(base=0.001, cap=0.001),
        )


@pytest.fixture
def sim_accounts(db):
    """make(**terminal options) -> SimAccount; `gateway_for` resolves an account to its simulated gateway."""
    from integrations.mt5.simulated import TerminalRegistry

    registry = TerminalRegistry()
    made: dict[int, SimAccount] = {}

    class Factory:
        def make(self, *, reset_seconds: float = 30.0, **options) -> SimAccount:
            account = TradingAccountFactory()
            cache.delete(f"recon:lock:account:{account.pk}")
            terminal = registry.create_account(
                account.login, server=account.server, password="sim-pass", **options
            )
            made[account.pk] = SimAccount(account, terminal, reset_seconds=reset_seconds)
            return made[account.pk]

        def gateway_for(self, *, account):
            return made[account.pk].gateway

    return Factory()


@pytest.fixture
def sim_account(sim_accounts) -> SimAccount:
    return sim_accounts.make()
