"""The `ea` gateway backend: reads come from the latest push, a stale or disconnected push is a failed read, and a
close goes to the EA as a command that is executed exactly once, whatever is lost or repeated on the way."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.selectors import trading_account_gateway
from ea.models import CommandState, EaCommand, EaLink
from guards.models import AlertKind, GuardAlert, IntentState
from guards.services.autoclose import position_close
from integrations.mt5 import constants as c
from integrations.mt5.errors import GatewayError
from integrations.mt5.simulated import SimulatedTerminal


def _closing_deals(terminal: SimulatedTerminal, ticket: int) -> int:
    return len([d for d in terminal.history_deals_get(position=ticket) or () if d.entry == c.DEAL_ENTRY_OUT])


@pytest.mark.django_db
def test_reads_come_from_the_latest_push(emulator, terminal, ea_account):
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.50", comment="bt-1")
    emulator.push()
    gateway = trading_account_gateway(account=ea_account)
    state = gateway.account()
    assert state.login == ea_account.login
    assert state.equity == pytest.approx(terminal.account_info().equity)
    [position] = gateway.positions()
    assert (position.ticket, position.symbol, position.comment) == (ticket, "EURUSD", "bt-1")
    assert str(position.volume) == "0.50"
    assert gateway.symbol("EURUSD").digits == 5
    assert gateway.terminal().connected is True


@pytest.mark.django_db
def test_a_silent_ea_makes_reads_fail_never_flat(emulator, terminal, ea_account, ea_key):
    terminal.sim_open_manual("EURUSD", "buy", "0.50")
    emulator.push()
    EaLink.objects.filter(pk=ea_key[0].pk).update(last_push_at=timezone.now() - timedelta(seconds=301))
    gateway = trading_account_gateway(account=ea_account)
    with pytest.raises(GatewayError, match="old"):
        gateway.positions()


@pytest.mark.django_db
def test_a_push_from_a_disconnected_terminal_is_a_failed_read(emulator, terminal, ea_account):
    terminal.sim_open_manual("EURUSD", "buy", "0.50")
    terminal.sim_set_connected(False)
    emulator.push()
    with pytest.raises(GatewayError, match="not connected"):
        trading_account_gateway(account=ea_account).positions()


@pytest.mark.django_db
def test_an_account_without_any_push_is_unreachable(ea_account, ea_key):
    with pytest.raises(GatewayError):
        trading_account_gateway(account=ea_account).account()


class RunningEa:
    """The emulated EA on its timer in a thread: push, then fetch and execute commands."""

    def __init__(self, emulator, interval: float = 0.1) -> None:
        self.emulator, self.interval = emulator, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                self.emulator.on_timer()
                self.emulator.poll_commands()
                self.emulator.poll_commands()  # a duplicate poll: must get nothing twice
                time.sleep(self.interval)
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self) -> "RunningEa":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture
def running_ea(emulator) -> Iterator[RunningEa]:
    with RunningEa(emulator) as ea:
        yield ea
    assert not ea.errors, ea.errors


@pytest.mark.django_db(transaction=True)
def test_a_close_is_a_command_the_ea_executes_once(emulator, terminal, ea_account):
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.50")
    emulator.push()
    gateway = trading_account_gateway(account=ea_account)
    with RunningEa(emulator) as ea:
        intent = position_close(account=ea_account, ticket=ticket, trigger_key="test:close", gateway=gateway)
    assert not ea.errors, ea.errors
    assert intent.state == IntentState.CONFIRMED
    assert terminal.positions_total() == 0
    assert _closing_deals(terminal, ticket) == 1
    command = EaCommand.objects.get()
    assert (command.state, command.fetch_count, command.result["retcode"]) == (
        CommandState.ANSWERED, 1, c.TRADE_RETCODE_DONE,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
@override_settings(MT5_EA_COMMAND_DEADLINE_SECONDS=1.0)
def test_a_lost_result_leaves_the_close_unresolved_then_a_later_push_confirms_it_without_a_second_order(
    emulator, terminal, ea_account
):
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.50")
    emulator.push()
    gateway = trading_account_gateway(account=ea_account)
    emulator.lose_next_result = True
    with RunningEa(emulator, interval=0.05) as ea:
        # The order goes through but its result is lost: the outcome is unknown at the deadline; the service
        # re-reads before anything else, from a push received after the deadline, and finds the position gone.
        intent = position_close(account=ea_account, ticket=ticket, trigger_key="test:lost", gateway=gateway)
    assert not ea.errors, ea.errors
    assert intent.state == IntentState.CONFIRMED
    assert GuardAlert.objects.filter(account=ea_account, kind=AlertKind.CLOSE_UNRESOLVED).exists()
    assert _closing_deals(terminal, ticket) == 1  # exactly one order
    assert EaCommand.objects.count() == 1
    assert emulator.executed == [EaCommand.objects.get().pk]


@pytest.mark.django_db(transaction=True)
@override_settings(MT5_EA_COMMAND_DEADLINE_SECONDS=0.5)
def test_an_ea_that_never_fetches_gets_nothing_after_the_deadline_and_the_state_waits_for_a_new_push(
    emulator, terminal, ea_account
):
    ticket = terminal.sim_open_manual("EURUSD", "buy", "0.50")
    emulator.push()
    gateway = trading_account_gateway(account=ea_account)
    intent = position_close(account=ea_account, ticket=ticket, trigger_key="test:silent", gateway=gateway)
    assert intent.state == IntentState.UNRESOLVED
    assert EaCommand.objects.get().state == CommandState.EXPIRED
    with pytest.raises(GatewayError, match="no answer"):
        gateway.positions()  # the last push predates the deadline: unknown, not "still open"
    assert emulator.poll_commands() == []  # too late: never handed out
    emulator.push()
    assert [p.ticket for p in gateway.positions()] == [ticket]
    assert _closing_deals(terminal, ticket) == 0
