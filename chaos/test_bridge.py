"""The terminal side: the simulated-terminal bridge restarted under running workers and a running market."""

import signal
import time

import pytest

from chaos.harness import Stack, report, timed_wait, wait_for
from chaos.test_services import ONE_CYCLE, _every_account_synced_after
from integrations.mt5 import constants as mt5


def _open_positions(stack: Stack) -> dict[int, set[int]]:
    rows = stack.postgres.sql("SELECT account_id, ticket FROM reconciliation_liveposition")
    held: dict[int, set[int]] = {}
    for account, ticket in rows:
        held.setdefault(account, set()).add(ticket)
    return held


def _count(stack: Stack, sql: str) -> int:
    return int(stack.postgres.sql(sql)[0][0])


GUARD_ACTIONS = """SELECT count(*) FROM guards_guardalert WHERE kind IN
    ('liquidation_scheduled', 'liquidation_started', 'halted', 'halted_position', 'close_sent')"""
DIVERGENCES = "SELECT coalesce(max(id), 0) FROM reconciliation_reconciliationevent"
TERMINAL_CLOSES = {"stop_loss", "take_profit", "stop_out"}
HOLDS = "SELECT count(*) FROM accounts_tradingaccount WHERE identity_hold_reason <> ''"


@pytest.mark.chaos
def test_bridge_killed_and_restarted_the_accounts_are_the_same_and_nothing_acts(stack: Stack) -> None:
    stack.start("demo")  # the demo market provisions the accounts and trades on them
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    wait_for(lambda: len(_open_positions(stack)) >= 2, timeout=90, what="positions on the demo accounts")
    stack.kill("demo", signal.SIGTERM)  # the market stands still: what the terminals hold must not change
    time.sleep(6)  # the bridge's periodic save has the last prices
    settled = stack.last_sync_id()
    wait_for(lambda: _every_account_synced_after(stack, settled), timeout=ONE_CYCLE, what="a settled sync")
    held_before = _open_positions(stack)
    # The bot's expectations with no position yet (the market was stopped between a signal and its fill): once their
    # grace passes they are reported missing, bridge restart or not.
    unfilled = {
        row[0]
        for row in stack.postgres.sql(
            "SELECT id FROM reconciliation_bottrade WHERE status = 'open' AND matched_ticket IS NULL"
        )
    }
    actions_before, divergences_before = _count(stack, GUARD_ACTIONS), _count(stack, DIVERGENCES)

    stack.kill("bridge", signal.SIGKILL)  # a crash: no goodbye, no final save
    time.sleep(12)  # at least one cycle fails against the missing bridge
    stack.start("bridge")
    mark = stack.last_sync_id()
    recovery = timed_wait(
        lambda: _every_account_synced_after(stack, mark), timeout=ONE_CYCLE, what="syncs after the restart"
    )
    time.sleep(12)  # another cycle on the restored terminals

    held_after = _open_positions(stack)
    assert all(
        held_after.get(account, set()) <= tickets for account, tickets in held_before.items()
    )  # none new
    logins = dict(stack.postgres.sql("SELECT id, login FROM accounts_tradingaccount"))
    closed_by_terminal = set()
    for account, tickets in held_before.items():
        for ticket in tickets - held_after.get(account, set()):
            # The market walked on while the bridge was away: a stop loss or take profit may have closed a position.
            # That is the terminal's own closing deal, not a position lost with the bridge.
            closing = stack.terminal(logins[account]).history_deals_get(position=ticket) or ()
            reasons = {
                deal.reason for deal in closing if deal.entry in (mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_OUT_BY)
            }
            assert reasons & {mt5.DEAL_REASON_SL, mt5.DEAL_REASON_TP, mt5.DEAL_REASON_SO}, (
                f"#{ticket} of account {account} vanished with no closing deal of the terminal's own"
            )
            closed_by_terminal.add(ticket)
    assert _count(stack, HOLDS) == 0  # the terminals are recognised as the same accounts
    assert _count(stack, GUARD_ACTIONS) == actions_before  # no liquidation, no halt
    new_events = stack.postgres.sql(
        "SELECT kind, ticket, detail->>'closed_by', bot_trade_id FROM reconciliation_reconciliationevent WHERE id > %s",
        (divergences_before,),
    )
    # No false divergence: the only new records are the bot's positions that the terminal closed by SL/TP/stop-out,
    # and expectations that were never filled.
    assert all(
        kind == "missing_position"
        and ((ticket in closed_by_terminal and closed_by in TERMINAL_CLOSES) or bot_trade in unfilled)
        for kind, ticket, closed_by, bot_trade in new_events
    ), new_events
    for name in ("worker", "beat"):
        assert stack.alive(name), f"{name} died:\n{stack.log(name)[-3000:]}"
    report("bridge_restart", recovery_seconds=recovery, positions=sum(map(len, held_before.values())))
