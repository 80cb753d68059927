"""Faults in the middle of a liquidation: the worker killed with an order in flight, the database gone mid-way.

An account is driven into a critical drawdown on its simulated terminal; the terminal's order_send is slowed so the
fault lands while a close order is in flight. Checked afterwards: every position of the account closed within a
minute of the fault clearing, by exactly one closing deal each (no duplicate order), and the intents all final."""

import signal
import time
from decimal import Decimal

import pytest

from chaos.harness import Stack, report, timed_wait, wait_for
from chaos.test_services import _every_account_synced_after
from integrations.mt5 import constants as mt5

POSITIONS = 3
ORDER_LATENCY = 6.0  # seconds an order_send takes: the fault lands while one is in flight


def _drive_into_liquidation(stack: Stack) -> tuple[int, int, list[int], object]:
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    account_id, login = stack.postgres.sql(
        "SELECT id, login FROM accounts_tradingaccount WHERE server = 'SimBroker-Demo' ORDER BY login LIMIT 1"
    )[0]
    terminal = stack.terminal(login)
    tickets = [
        terminal.sim_open_manual("EURUSD", "buy", "1.0", comment=f"chaos-{i}") for i in range(POSITIONS)
    ]
    mark = stack.last_sync_id()
    wait_for(
        lambda: len(stack.postgres.sql(
            "SELECT 1 FROM reconciliation_liveposition WHERE account_id = %s", (account_id,)
        )) == POSITIONS and _every_account_synced_after(stack, mark),
        timeout=40, what="the positions seen by a sync",
    )  # fmt: skip
    terminal.sim_set_latency("order_send", ORDER_LATENCY)
    tick = terminal.symbol_info_tick("EURUSD")
    drop = Decimal("0.0100")  # 3 lots x 100 000 x 0.01 = 3 000 USD: a 30 % drawdown on 10 000
    bid = (Decimal(str(tick.bid)) - drop).quantize(Decimal("0.00001"))
    terminal.sim_set_price("EURUSD", str(bid), str(bid + Decimal("0.00010")))
    return account_id, login, tickets, terminal


def _intent_in_flight(stack: Stack, account_id: int) -> bool:
    return bool(
        stack.postgres.sql(
            "SELECT 1 FROM guards_closeintent WHERE account_id = %s AND state = 'sent'", (account_id,)
        )
    )


def _closing_deals(terminal, ticket: int) -> list:
    deals = terminal.history_deals_get(position=ticket) or ()
    return [d for d in deals if d.entry in (mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_OUT_BY)]


def _all_closed_once(terminal, tickets: list[int]) -> bool:
    open_tickets = {p.ticket for p in terminal.positions_get() or ()}
    return not (open_tickets & set(tickets)) and all(len(_closing_deals(terminal, t)) == 1 for t in tickets)


def _assert_closed_exactly_once(stack: Stack, account_id: int, terminal, tickets: list[int]) -> None:
    assert not ({p.ticket for p in terminal.positions_get() or ()} & set(tickets)), "a position was left open"
    for ticket in tickets:
        assert len(_closing_deals(terminal, ticket)) == 1, f"#{ticket} closed by more than one order"
    sends = stack.postgres.sql(
        "SELECT ticket, sum(order_sends) FROM guards_closeintent WHERE account_id = %s GROUP BY ticket",
        (account_id,),
    )
    assert {ticket for ticket, _ in sends} >= set(tickets)
    halted = stack.postgres.sql("SELECT status FROM guards_guardstate WHERE account_id = %s", (account_id,))
    assert halted == [("halted",)]


@pytest.mark.chaos
def test_worker_sigkilled_mid_liquidation_every_position_closes_once_within_a_minute(stack: Stack) -> None:
    account_id, _login, tickets, terminal = _drive_into_liquidation(stack)
    wait_for(lambda: _intent_in_flight(stack, account_id), timeout=90, what="a close order in flight")
    time.sleep(1)  # inside order_send
    stack.kill("worker", signal.SIGKILL)
    stack.start("worker")
    recovery = timed_wait(
        lambda: _all_closed_once(terminal, tickets), timeout=60, what="every position closed after the kill"
    )
    terminal.sim_set_latency("order_send", 0.0)
    wait_for(
        lambda: not stack.postgres.sql(
            "SELECT 1 FROM guards_closeintent WHERE account_id = %s AND state IN ('pending', 'sent', 'unresolved')",
            (account_id,),
        ),
        timeout=60, what="every intent final",
    )  # fmt: skip
    _assert_closed_exactly_once(stack, account_id, terminal, tickets)
    report("worker_sigkill_mid_liquidation", recovery_seconds=recovery, positions=len(tickets), duplicates=0)


@pytest.mark.chaos
def test_postgres_stopped_mid_liquidation_every_position_closes_once_after_it_returns(stack: Stack) -> None:
    account_id, _login, tickets, terminal = _drive_into_liquidation(stack)
    wait_for(lambda: _intent_in_flight(stack, account_id), timeout=90, what="a close order in flight")
    stack.postgres.stop("immediate")  # the order reaches the terminal; its outcome cannot be written
    time.sleep(20)
    stack.postgres.start()
    recovery = timed_wait(
        lambda: _all_closed_once(terminal, tickets), timeout=60, what="every position closed after the outage"
    )
    terminal.sim_set_latency("order_send", 0.0)
    wait_for(
        lambda: not stack.postgres.sql(
            "SELECT 1 FROM guards_closeintent WHERE account_id = %s AND state IN ('pending', 'sent', 'unresolved')",
            (account_id,),
        ),
        timeout=90, what="every intent final",
    )  # fmt: skip
    _assert_closed_exactly_once(stack, account_id, terminal, tickets)
    for name in ("bridge", "worker", "beat"):
        assert stack.alive(name), f"{name} died during the outage:\n{stack.log(name)[-3000:]}"
    report("postgres_down_mid_liquidation", recovery_seconds=recovery, positions=len(tickets), duplicates=0)
