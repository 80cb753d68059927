"""Risk fixtures: a clean shared-cache entry per test, a trader's account with a fresh snapshot, a stub terminal."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import GatewayBackend, TradingAccount, User
from accounts.selectors import trading_account_gateway
from accounts.services import account_snapshot_record, trading_account_create
from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from integrations.mt5 import reset_gateways
from integrations.mt5.errors import GatewayInvalidRequest
from integrations.mt5.simulated.registry import default_registry
from integrations.mt5.types import Side, SymbolSpec
from risk.selectors import risk_config_invalidate_cache

D = Decimal


@pytest.fixture(autouse=True)
def _fresh_config_cache() -> Iterator[None]:
    # The cache is the real Redis and outlives each test's rolled-back transaction.
    risk_config_invalidate_cache()
    yield
    risk_config_invalidate_cache()


def eurusd_spec() -> SymbolSpec:
    """EURUSD as in the spec's case file (tick 0.00001 worth 1.0 USD per lot)."""
    return SymbolSpec(
        name="EURUSD",
        description="Euro vs US Dollar",
        digits=5,
        point=D("0.00001"),
        trade_tick_size=D("0.00001"),
        trade_tick_value=D("1.0"),
        trade_contract_size=D("100000"),
        volume_min=D("0.01"),
        volume_max=D("100"),
        volume_step=D("0.01"),
        trade_stops_level=0,
        trade_freeze_level=0,
        trade_mode=4,
        trade_exemode=2,
        trade_calc_mode=0,
        filling_mode=1,
        currency_base="EUR",
        currency_profit="USD",
        currency_margin="EUR",
        spread=10,
    )


@dataclass
class StubTerminal:
    """The two calls sizing makes (symbol_info, order_calc_margin), answering like the spec's case file."""

    symbols: dict[str, SymbolSpec] = field(default_factory=lambda: {"EURUSD": eurusd_spec()})
    margin_per_lot: Decimal = field(default_factory=lambda: D("1085.0"))
    calls: list[str] = field(default_factory=list)

    def symbol(self, name: str) -> SymbolSpec:
        self.calls.append(f"symbol {name}")
        if name not in self.symbols:
            raise GatewayInvalidRequest(f"unknown symbol {name}", code=-2, call="symbol_info")
        return self.symbols[name]

    def margin_for(self, *, side: Side, symbol: str, volume: Decimal, price: Decimal) -> Decimal:
        self.calls.append(f"margin {side} {symbol} {volume} {price}")
        self.symbol(symbol)
        return self.margin_per_lot * volume


@pytest.fixture
def stub_terminal() -> StubTerminal:
    return StubTerminal()


def account_with_snapshot(*, owner: User, age_seconds: float = 12, **snapshot: object) -> TradingAccount:
    account = TradingAccountFactory(owner=owner)
    values = {"balance": D("10000"), "equity": D("10000"), "margin_free": D("9500")} | snapshot
    taken_at = timezone.now() - timedelta(seconds=age_seconds)
    snap = AccountSnapshotFactory(account=account, taken_at=taken_at, server_time=taken_at, **values)
    account.latest_snapshot = snap
    account.save(update_fields=["latest_snapshot"])
    return account


@pytest.fixture
def trader_account(trader: User) -> TradingAccount:
    return account_with_snapshot(owner=trader)


SIM_SERVER = "Risk-Sim"


@pytest.fixture
def simulated_account(trader: User) -> Iterator[TradingAccount]:
    """A trader's account on its own in-process simulated terminal (the real gateway path: trading_account_gateway
    -> get_gateway -> TerminalGateway -> SimulatedTerminal), with a fresh snapshot read from that terminal."""
    login = 8_800_001
    default_registry().create_account(login, server=SIM_SERVER, balance=10_000, password="sim-pw-1")
    account = trading_account_create(
        owner=trader, login=login, server=SIM_SERVER, password="sim-pw-1", backend=GatewayBackend.SIMULATED
    )
    account_snapshot_record(account=account, state=trading_account_gateway(account=account).account())
    yield account
    reset_gateways()
    default_registry().remove(login, SIM_SERVER)
