"""The broker clock offset in the database (issue 9 item 8): an unknown offset is shown in the account's health and
the admin, flagged on the snapshot, and the daily-loss anchor waits for it instead of taking UTC's day."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AccountHealth, AccountSnapshot
from accounts.services import account_health_probe, account_snapshot_record, trading_account_create
from guards.models import GuardState
from guards.services import account_guards_evaluate
from integrations.mt5.circuit import CircuitBreaker, MemoryBreakerStore
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.simulated import SimClock, SimulatedTerminal
from integrations.mt5.terminal import TerminalGateway
from pipeline.services import account_reading_take

# 22:30 UTC on a Tuesday is already Wednesday 01:30 on a UTC+3 broker: UTC's day would be the wrong one.
START = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)
LOGIN, SERVER = 4501, "Clock-Broker"


@pytest.fixture
def broker() -> SimulatedTerminal:
    clock = SimClock.fixed(START, server_utc_offset=3 * 3600)
    terminal = SimulatedTerminal(
        login=LOGIN, password=None, server=SERVER, symbols=["EURUSD.x"], clock=clock, sleep=lambda s: None
    )
    terminal.sim_open_manual("EURUSD.x", "buy", "0.1")
    return terminal


@pytest.fixture
def gateway(broker) -> ManagedGateway:
    inner = TerminalGateway(
        broker,
        login=LOGIN,
        password="",
        server=SERVER,
        clock=lambda: broker.clock.utc_ms() / 1000,
        offset_wait_seconds=0,  # a virtual clock: polling for a tick would only wait
    )
    return ManagedGateway(
        inner, account_key="clock-test", breaker=CircuitBreaker("clock-test", store=MemoryBreakerStore())
    )


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=LOGIN, server=SERVER)


def _sync(account, gateway, broker):
    """What the sync does: one reading, a snapshot of it, then the guards (on the terminal's clock)."""
    now = broker.clock.now()
    reading = account_reading_take(account=account, gateway=gateway, now=now)
    snapshot = account_snapshot_record(account=account, state=reading.state, taken_at=now)
    evaluation = account_guards_evaluate(account=account, snapshot=snapshot, reading=reading, now=now)
    return snapshot, evaluation


def test_the_day_anchor_waits_for_the_broker_clock_and_then_uses_the_brokers_day(account, gateway, broker):
    snapshot, evaluation = _sync(account, gateway, broker)
    assert snapshot.server_utc_offset_known is False
    assert evaluation.daily_loss_waiting == "broker clock offset unknown: the trading day cannot be told yet"
    state = GuardState.objects.get(account=account)
    assert (state.broker_day, state.day_anchor, state.daily_loss_percent) == (None, None, None)
    assert state.peak_equity == snapshot.equity  # the drawdown guard does not need the broker's day

    broker.sim_advance(10)  # the held symbol ticked in between: the offset is measured on this reading
    snapshot, evaluation = _sync(account, gateway, broker)
    assert snapshot.server_utc_offset_known is True
    assert snapshot.server_utc_offset_seconds == 3 * 3600
    assert evaluation.daily_loss_waiting == ""
    state = GuardState.objects.get(account=account)
    assert state.broker_day == date(2026, 3, 4)  # the broker's Wednesday, not UTC's Tuesday
    assert state.day_anchor == max(snapshot.balance, snapshot.equity)


def test_health_and_admin_show_an_unknown_offset_then_the_measured_one(
    account, gateway, broker, owner, client
):
    row = account_health_probe(account=account, gateway=gateway)
    assert (row.server_utc_offset_seconds, row.server_utc_offset_source) == (None, "unknown")
    client.force_login(owner)
    page = client.get(reverse("admin:accounts_tradingaccount_changelist")).content.decode()
    assert "broker clock offset unknown" in page
    assert "offset unknown" in client.get(reverse("admin:accounts_accounthealth_changelist")).content.decode()

    broker.sim_advance(10)
    row = account_health_probe(account=account, gateway=gateway)
    assert (row.server_utc_offset_seconds, row.server_utc_offset_source) == (3 * 3600, "estimated")
    assert row.server_utc_offset_measured_at == broker.clock.now()
    assert row.broker_clock == "UTC+03:00 (estimated)"
    assert (
        "UTC+03:00 (estimated)"
        in client.get(reverse("admin:accounts_accounthealth_changelist")).content.decode()
    )
    assert (
        "offset unknown"
        not in client.get(reverse("admin:accounts_tradingaccount_changelist")).content.decode()
    )


def test_a_failed_probe_keeps_the_last_known_broker_clock(account, gateway, broker):
    account_health_probe(account=account, gateway=gateway)
    broker.sim_advance(10)
    account_health_probe(account=account, gateway=gateway)
    broker.sim_drop_connection()
    broker.sim_inject_fault("initialize", (-10004, "No IPC connection"), times=10)
    row = account_health_probe(account=account, gateway=gateway)
    assert row.connected is False
    assert row.server_utc_offset_seconds == 3 * 3600


def test_a_snapshot_from_a_reading_with_a_configured_offset_is_trusted(account, broker):
    inner = TerminalGateway(
        broker,
        login=LOGIN,
        password="",
        server=SERVER,
        server_utc_offset=timedelta(hours=3),
        clock=lambda: broker.clock.utc_ms() / 1000,
    )
    inner.connect()
    snapshot = account_snapshot_record(account=account, state=inner.account())
    assert snapshot.server_utc_offset_known is True
    assert AccountSnapshot.objects.get(pk=snapshot.pk).server_wall_time.utcoffset() == timedelta(hours=3)
    assert AccountHealth.objects.filter(account=account).count() == 0
    assert snapshot.balance == Decimal("10000.00")
