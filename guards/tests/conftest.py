"""Fixtures of the guard tests: a simulated terminal on a virtual clock behind the production gateway stack, an
account, the guards' clock pinned to the terminal's, and a recorder in place of the Celery dispatcher."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import AccountSnapshot
from accounts.services import trading_account_create
from guards.clock import clock_override, guard_now
from guards.services import account_guards_evaluate, market_reading_take
from guards.services.dispatch import dispatcher_override
from integrations.mt5.reading import AccountReading, SymbolMarket
from integrations.mt5.simulated import SimClock, SimulatedTerminal
from integrations.mt5.types import AccountState, MarginMode, TerminalState
from pipeline.replay.runner import TerminalProxy, simulated_gateway

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday
LOGIN = 6001
SERVER = "Guard-Test"


@pytest.fixture
def sim() -> SimulatedTerminal:
    clock = SimClock.fixed(START)
    terminal = SimulatedTerminal(
        login=LOGIN, password=None, server=SERVER, balance=10_000, clock=clock, sleep=lambda seconds: None
    )
    terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    return terminal


@pytest.fixture
def terminal(sim: SimulatedTerminal) -> TerminalProxy:
    return TerminalProxy(sim, lambda action, args: None)


@pytest.fixture
def gateway(terminal: TerminalProxy, sim: SimulatedTerminal):
    gw = simulated_gateway(terminal, login=LOGIN, server=SERVER, clock=sim.clock)
    yield gw
    gw.close()


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=LOGIN, server=SERVER)


@pytest.fixture
def clock(sim: SimulatedTerminal):
    with clock_override(now=sim.clock.now, sleep=lambda seconds: None):
        yield sim.clock


@dataclass
class Recorder:
    """What the guards asked the dispatcher (Celery in production) to do."""

    liquidations: list[dict[str, Any]] = field(default_factory=list)
    closes: list[dict[str, Any]] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def dispatched():
    recorder = Recorder()

    class _Dispatcher:
        def liquidation(self, **kwargs: Any) -> None:
            recorder.liquidations.append(kwargs)

        def closes(self, **kwargs: Any) -> None:
            recorder.closes.append(kwargs)

        def close_retry(self, **kwargs: Any) -> None:
            recorder.retries.append(kwargs)

    with dispatcher_override(_Dispatcher()):
        yield recorder


def make_snapshot(
    account,
    *,
    equity: str | int,
    balance: str | int = 10_000,
    at: datetime,
    offset_hours: int = 2,
    credit: str | int = 0,
) -> AccountSnapshot:
    """A stored snapshot taken at `at` (UTC), with the broker's clock `offset_hours` east of UTC."""
    snapshot = AccountSnapshot.objects.create(
        account=account,
        balance=Decimal(str(balance)),
        credit=Decimal(str(credit)),
        equity=Decimal(str(equity)),
        margin_free=Decimal(str(equity)),
        currency="USD",
        taken_at=at,
        server_time=at.astimezone(timezone(timedelta(hours=offset_hours))),
        server_utc_offset_seconds=offset_hours * 3600,
    )
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    return snapshot


def reading_of(
    snapshot: AccountSnapshot | None,
    *,
    positions: Sequence[Any] = (),
    deals: Sequence[Any] | None = (),
    deals_error: str = "",
    market: dict[str, SymbolMarket] | None = None,
) -> AccountReading | None:
    """The terminal reading a snapshot came from, as the pipeline hands it to the guards."""
    if snapshot is None:
        return None
    state = AccountState(
        login=LOGIN, server=SERVER, company="Sim", name="Trader", currency="USD", currency_digits=2, leverage=100,
        margin_mode=MarginMode.HEDGING, trade_allowed=True, trade_expert=True, balance=snapshot.balance,
        credit=snapshot.credit, profit=snapshot.profit, equity=snapshot.equity, margin=snapshot.margin,
        margin_free=snapshot.margin_free, margin_level=snapshot.margin_level, margin_so_call=Decimal(50),
        margin_so_so=Decimal(30), time=snapshot.taken_at, server_time=snapshot.server_time,
    )  # fmt: skip
    terminal = TerminalState(
        connected=True, trade_allowed=True, tradeapi_disabled=False, build=5430, ping_ms=Decimal(1), company="Sim",
        name="MetaTrader 5",
    )  # fmt: skip
    return AccountReading(
        taken_at=snapshot.taken_at,
        state=state,
        terminal=terminal,
        positions=tuple(positions),
        deals=None if deals is None else tuple(deals),
        deals_since=snapshot.taken_at - timedelta(minutes=1),
        deals_error=deals_error,
        market=market or {},
    )


def evaluate_reading(
    *,
    account,
    snapshot: AccountSnapshot | None,
    positions: Sequence[Any] = (),
    gateway: Any = None,
    now: datetime | None = None,
    deals: Sequence[Any] | None = (),
    deals_error: str = "",
    failure: str = "",
):
    """account_guards_evaluate on the reading the pipeline would take: with a gateway, the market data of the
    symbols held are read through it first (market_reading_take), outside the guards' lock, as in a sync."""
    at = now or guard_now()
    market = (
        market_reading_take(account=account, gateway=gateway, positions=positions, now=at)
        if gateway is not None and snapshot is not None
        else {}
    )
    reading = reading_of(snapshot, positions=positions, deals=deals, deals_error=deals_error, market=market)
    return account_guards_evaluate(
        account=account, snapshot=snapshot, reading=reading, now=now, failure=failure
    )
