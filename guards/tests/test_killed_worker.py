"""A worker killed in the middle of a liquidation: whatever the moment, the next run (the re-delivered task, or the
recovery task) leaves no position open and never sends a second order for a position.

The kill is simulated with a BaseException raised from inside the gateway (no `except Exception` of ours catches
it, as nothing of ours runs after SIGKILL); the advisory lock is released on the way out, as PostgreSQL releases it
when a killed worker's connection drops.
"""

import uuid
from decimal import Decimal

import pytest

from guards import tasks
from guards.models import CloseIntent, GuardState, GuardStatus, IntentState, Level
from integrations.mt5.simulated import SimulatedTerminal

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands for SIGKILL: unwinds everything, caught by nothing of ours."""


class Killer:
    """Wraps the gateway; kills the 'worker' at the n-th order_send, before or after the terminal executed it."""

    def __init__(self, gateway, *, at_send: int, executed: bool) -> None:
        self._gateway = gateway
        self._at = at_send
        self._executed = executed
        self.sends = 0
        self.armed = True

    def order_send(self, request):
        self.sends += 1
        if self.armed and self.sends == self._at:
            self.armed = False
            if self._executed:
                self._gateway.order_send(request)
            raise WorkerKilled
        return self._gateway.order_send(request)

    def __getattr__(self, name):
        return getattr(self._gateway, name)


def _tripped(account, sim: SimulatedTerminal, positions: int = 3) -> tuple[list[int], str]:
    tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0", comment=f"p{i}") for i in range(positions)]
    sim.sim_set_price("EURUSD", "1.07700", "1.07710")  # about 24 % down from 10 000
    trip_id = str(uuid.uuid4())
    GuardState.objects.create(
        account=account,
        status=GuardStatus.TRIPPED,
        trip_id=trip_id,
        trip_guard="drawdown",
        peak_equity=Decimal("10000"),
        day_anchor=Decimal("10000"),
        drawdown_level=Level.CRITICAL,
    )
    return tickets, trip_id


@pytest.mark.parametrize(
    ("at_send", "executed"),
    [
        (1, True),  # killed after the terminal closed the first position, before we recorded it
        (2, True),  # ... the second one
        (2, False),  # killed after the write-ahead `sent`, before the order reached the terminal
        (3, True),
    ],
)
@pytest.mark.parametrize("recovery", ["redelivered_task", "recovery_task"])
def test_killed_mid_liquidation_then_recovered_exactly_once(
    account, sim, terminal, gateway, clock, monkeypatch, at_send, executed, recovery
):
    tickets, trip_id = _tripped(account, sim)
    killer = Killer(gateway, at_send=at_send, executed=executed)
    monkeypatch.setattr(tasks, "_gateway_for", lambda acc: killer)

    with pytest.raises(WorkerKilled):
        tasks.account_liquidate_task(account.pk, trip_id)

    # What the killed worker left behind: the account halted, one intent per position, the one in flight `sent`.
    assert GuardState.objects.get(account=account).status == GuardStatus.HALTED
    intents = {i.ticket: i for i in CloseIntent.objects.filter(account=account)}
    assert sorted(intents) == sorted(tickets)
    assert intents[tickets[at_send - 1]].state == IntentState.SENT

    if recovery == "redelivered_task":  # acks_late + reject_on_worker_lost: the same message runs again
        tasks.account_liquidate_task(account.pk, trip_id)
    else:  # the periodic / worker-start recovery
        tasks.close_intents_complete_task(older_than_seconds=0)

    assert sim.sim_find_positions() == []
    assert {t: terminal.order_sends[t] for t in tickets} == dict.fromkeys(tickets, 1)
    assert set(CloseIntent.objects.values_list("state", flat=True)) == {IntentState.CONFIRMED}

    # And any further run changes nothing.
    tasks.account_liquidate_task(account.pk, trip_id)
    tasks.close_intents_complete_task(older_than_seconds=0)
    assert {t: terminal.order_sends[t] for t in tickets} == dict.fromkeys(tickets, 1)


def test_killed_before_any_order_leaves_pending_intents_that_recovery_completes(
    account, sim, terminal, gateway, clock, monkeypatch
):
    tickets, trip_id = _tripped(account, sim)

    class DiesOnFirstRead:
        def __init__(self) -> None:
            self.reads = 0

        def positions(self, **kwargs):
            self.reads += 1
            if self.reads == 2:  # 1: the liquidation's own read; 2: the first intent's re-read
                raise WorkerKilled
            return gateway.positions(**kwargs)

        def __getattr__(self, name):
            return getattr(gateway, name)

    monkeypatch.setattr(tasks, "_gateway_for", lambda acc: DiesOnFirstRead())
    with pytest.raises(WorkerKilled):
        tasks.account_liquidate_task(account.pk, trip_id)
    assert set(CloseIntent.objects.values_list("state", flat=True)) == {IntentState.PENDING}

    monkeypatch.setattr(tasks, "_gateway_for", lambda acc: gateway)
    tasks.close_intents_complete_task(older_than_seconds=0)
    assert sim.sim_find_positions() == []
    assert {t: terminal.order_sends[t] for t in tickets} == dict.fromkeys(tickets, 1)


def test_recovery_skips_an_intent_another_worker_is_driving(
    account, sim, terminal, gateway, clock, monkeypatch
):
    import threading

    from django.db import connection

    from guards.services.autoclose import close_intent_get_or_create, ticket_lock

    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    close_intent_get_or_create(account=account, ticket=ticket, trigger="operator", trigger_key="op")
    monkeypatch.setattr(tasks, "_gateway_for", lambda acc: gateway)
    held, release = threading.Event(), threading.Event()

    def other_worker():  # its own database session, like another process
        try:
            with ticket_lock(account_id=account.pk, ticket=ticket):
                held.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert held.wait(timeout=10)
    try:
        tasks.close_intents_complete_task(older_than_seconds=0)
    finally:
        release.set()
        thread.join()
    assert terminal.order_sends[ticket] == 0  # left to the holder of the lock
    assert CloseIntent.objects.get().state == IntentState.PENDING


def test_a_liquidation_task_that_finds_the_database_gone_is_retried_shortly_not_dropped(
    account, sim, terminal, gateway, clock, monkeypatch
):
    """Found by `make chaos` (PostgreSQL stopped mid-liquidation): the task's retry ran while the database was still
    down, died of the OperationalError, and the positions waited for the periodic recovery (~45 s after the database
    was back). Now such a task is retried every 5 s; the write-ahead intents keep it to one order per position."""
    from celery.exceptions import Retry
    from django.db import OperationalError

    tickets, trip_id = _tripped(account, sim)
    real_liquidate = tasks.services.account_liquidate
    calls = []

    def database_down_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("connection to server failed: Connection refused")
        return real_liquidate(**kwargs)

    monkeypatch.setattr(tasks.services, "account_liquidate", database_down_once)
    monkeypatch.setattr(tasks, "_gateway_for", lambda acc: gateway)
    scheduled = []
    monkeypatch.setattr(tasks.account_liquidate_task, "apply_async", lambda *a, **kw: scheduled.append(kw))
    task = tasks.account_liquidate_task
    task.push_request(args=[account.pk, trip_id], retries=0, called_directly=False, is_eager=False)
    try:
        with pytest.raises(Retry):
            task.run(account.pk, trip_id)
    finally:
        task.pop_request()
    assert scheduled[0]["countdown"] == 5  # the same message again, five seconds on

    tasks.account_liquidate_task(account.pk, trip_id)  # that retry, with the database back
    assert sim.sim_find_positions() == []
    assert {t: terminal.order_sends[t] for t in tickets} == dict.fromkeys(tickets, 1)
