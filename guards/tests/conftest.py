"""Fixtures of the guard tests: a simulated terminal on a virtual clock behind the production gateway stack, an
account, the guards' clock pinned to the terminal's, and a recorder in place of the Celery dispatcher."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import AccountSnapshot
from accounts.services import trading_account_create
from guards.clock import clock_override
from guards.replay.runner import TerminalProxy, simulated_gateway
from guards.services.dispatch import dispatcher_override
from integrations.mt5.simulated import SimClock, SimulatedTerminal

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
) -> AccountSnapshot:
    """A stored snapshot taken at `at` (UTC), with the broker's clock `offset_hours` east of UTC."""
    snapshot = AccountSnapshot.objects.create(
        account=account,
        balance=Decimal(str(balance)),
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
