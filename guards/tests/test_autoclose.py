"""Auto-close against the simulated terminal: intents, retcodes, unknown outcomes, filling modes, concurrency."""

import threading

import pytest
from django.conf import settings
from django.db import connection

from guards.models import AlertKind, CloseIntent, GuardAlert, IntentState
from guards.services import position_close, positions_close_all
from guards.services.autoclose import filling_candidates
from integrations.mt5 import constants as mt5c
from integrations.mt5.errors import GatewayCircuitOpen

pytestmark = pytest.mark.django_db

IPC_TIMEOUT = (-10005, "IPC timeout")


def _open(sim, volume="1.0", **kwargs):
    return sim.sim_open_manual("EURUSD", "buy", volume, **kwargs)


def _close(account, gateway, ticket, key="op-1"):
    return position_close(account=account, ticket=ticket, trigger_key=key, gateway=gateway)


def _alerts(intent) -> list[tuple[str, object]]:
    return [
        (a.kind, a.detail.get("retcode")) for a in GuardAlert.objects.filter(intent=intent).order_by("pk")
    ]


def test_close_sends_one_order_with_position_and_our_magic(account, sim, terminal, gateway, clock):
    ticket = _open(sim, magic=4242)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.order_sends == 1
    assert intent.outcome["by_us"] is True
    assert sim.sim_find_positions() == []
    (request,) = terminal.requests
    assert request["position"] == ticket
    assert request["magic"] == settings.MT5_PRODUCT_MAGIC
    assert request["type"] == mt5c.ORDER_TYPE_SELL
    assert request["action"] == mt5c.TRADE_ACTION_DEAL
    assert request["volume"] == 1.0
    assert _alerts(intent) == [(AlertKind.CLOSE_SENT, 10009), (AlertKind.CLOSE_CONFIRMED, None)]


def test_the_same_idempotency_key_returns_the_first_result(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    first = _close(account, gateway, ticket)
    second = _close(account, gateway, ticket)
    assert second.pk == first.pk
    assert second.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 1
    assert CloseIntent.objects.count() == 1


def test_a_position_already_gone_is_confirmed_without_an_order(account, sim, terminal, gateway, clock):
    ticket = _open(sim, sl="1.08000")
    sim.sim_set_price("EURUSD", "1.07900", "1.07910")  # the stop loss fires
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.outcome["closed_by"] == "stop_loss"
    assert terminal.order_sends[ticket] == 0


def test_stop_loss_while_our_close_is_in_flight_is_a_confirmation(account, sim, terminal, gateway, clock):
    ticket = _open(sim, sl="1.08000")
    terminal.before("order_send", lambda: sim.sim_set_price("EURUSD", "1.07900", "1.07910"))
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.last_retcode == mt5c.TRADE_RETCODE_POSITION_CLOSED
    assert intent.outcome["closed_by"] == "stop_loss"
    assert not GuardAlert.objects.filter(kind=AlertKind.CLOSE_FAILED).exists()


def test_timeout_after_execution_is_resolved_from_the_terminal_without_a_second_order(
    account, sim, terminal, gateway, clock
):
    ticket = _open(sim)
    sim.sim_inject_fault("order_send", IPC_TIMEOUT, 1, executed=True)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 1
    assert intent.outcome["by_us"] is True
    assert _alerts(intent) == [
        (AlertKind.CLOSE_SENT, None),
        (AlertKind.CLOSE_UNRESOLVED, None),
        (AlertKind.CLOSE_CONFIRMED, None),
    ]


def test_timeout_without_execution_is_re_read_then_sent_again(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_inject_fault("order_send", IPC_TIMEOUT, 1)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 2
    assert sim.sim_find_positions() == []


def test_ambiguous_retcode_is_unresolved_then_re_read(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_TIMEOUT, 1, executed=True)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 1
    assert [k for k, _ in _alerts(intent)] == ["close_sent", "close_unresolved", "close_confirmed"]


def test_a_terminal_that_stays_silent_leaves_the_intent_unresolved(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_inject_fault("order_send", IPC_TIMEOUT, 10)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.UNRESOLVED
    assert terminal.order_sends[ticket] == 3  # first try + MAX_UNKNOWN_PER_RUN re-reads-then-resends
    sim.sim_clear_faults()
    intent = _close(account, gateway, ticket)  # the recovery path: same key
    assert intent.state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 4


def test_requotes_are_retried_with_a_fresh_price(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_REQUOTE, 2)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.price_retries == 2
    assert terminal.order_sends[ticket] == 3


def test_requotes_are_bounded(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_REQUOTE, 10)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.FAILED
    assert intent.last_retcode == mt5c.TRADE_RETCODE_REQUOTE
    assert terminal.order_sends[ticket] == 4  # 1 + close_price_retries (3)
    assert sim.sim_find_positions() == [ticket]


@pytest.mark.parametrize("retcode", [mt5c.TRADE_RETCODE_PRICE_CHANGED, mt5c.TRADE_RETCODE_PRICE_OFF])
def test_price_changed_and_price_off_retry_too(account, sim, terminal, gateway, clock, retcode):
    ticket = _open(sim)
    sim.sim_inject_retcode(retcode, 1)
    assert _close(account, gateway, ticket).state == IntentState.CONFIRMED
    assert terminal.order_sends[ticket] == 2


def test_invalid_fill_moves_to_the_next_filling_mode(account, sim, terminal, gateway, clock):
    sim.sim_set_symbol("EURUSD", exemode=mt5c.SYMBOL_TRADE_EXECUTION_MARKET, filling_mode=1 | 2)
    ticket = _open(sim)
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_INVALID_FILL, 1)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.CONFIRMED
    assert intent.fillings_tried == [mt5c.ORDER_FILLING_FOK]
    assert [r["type_filling"] for r in terminal.requests] == [mt5c.ORDER_FILLING_FOK, mt5c.ORDER_FILLING_IOC]


def test_filling_follows_the_symbol_flags(account, sim, terminal, gateway, clock):
    sim.sim_set_symbol("EURUSD", exemode=mt5c.SYMBOL_TRADE_EXECUTION_MARKET, filling_mode=2)
    ticket = _open(sim)
    assert _close(account, gateway, ticket).state == IntentState.CONFIRMED
    assert [r["type_filling"] for r in terminal.requests] == [mt5c.ORDER_FILLING_IOC]


def test_filling_candidates_order():
    assert filling_candidates(1) == [0, 2, 1]
    assert filling_candidates(2) == [1, 2, 0]
    assert filling_candidates(3) == [0, 1, 2]
    assert filling_candidates(0) == [2, 0, 1]


def test_other_retcodes_fail_with_the_retcode_recorded(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_set_trade_allowed(False)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.FAILED
    assert intent.last_retcode == mt5c.TRADE_RETCODE_CLIENT_DISABLES_AT
    assert terminal.order_sends[ticket] == 1
    failed = GuardAlert.objects.get(intent=intent, kind=AlertKind.CLOSE_FAILED)
    assert failed.detail["retcode"] == mt5c.TRADE_RETCODE_CLIENT_DISABLES_AT


def test_a_local_refusal_fails_without_ambiguity(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    sim.sim_set_tradeapi_disabled(True)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.FAILED
    assert sim.sim_find_positions() == [ticket]


def test_an_open_circuit_sends_nothing_and_keeps_the_intent_pending(
    account, sim, gateway, clock, monkeypatch
):
    ticket = _open(sim)

    def refuse(request):
        raise GatewayCircuitOpen("circuit open", call="order_send")

    monkeypatch.setattr(gateway, "order_send", refuse)
    intent = _close(account, gateway, ticket)
    assert intent.state == IntentState.PENDING
    assert intent.order_sends == 0


def test_bulk_close_isolates_each_position(account, sim, terminal, gateway, clock):
    tickets = [_open(sim, volume="0.5") for _ in range(3)]
    sim.sim_inject_retcode(mt5c.TRADE_RETCODE_TRADE_DISABLED, 1)  # the first order fails hard
    outcomes = positions_close_all(account=account, trigger_key="bulk-1", gateway=gateway)
    by_ticket = {o.ticket: o for o in outcomes}
    assert sorted(by_ticket) == sorted(tickets)
    assert by_ticket[tickets[0]].state == IntentState.FAILED
    assert by_ticket[tickets[0]].retcode == mt5c.TRADE_RETCODE_TRADE_DISABLED
    assert {by_ticket[t].state for t in tickets[1:]} == {IntentState.CONFIRMED}
    assert sim.sim_find_positions() == [tickets[0]]


def test_bulk_close_survives_an_unexpected_error_on_one_position(account, sim, gateway, clock, monkeypatch):
    from guards.services import autoclose

    tickets = [_open(sim, volume="0.5") for _ in range(2)]
    real = autoclose.close_intent_drive

    def flaky(*, intent, gateway, **kwargs):
        if intent.ticket == tickets[0]:
            raise RuntimeError("boom")
        return real(intent=intent, gateway=gateway, **kwargs)

    monkeypatch.setattr(autoclose, "close_intent_drive", flaky)
    outcomes = positions_close_all(account=account, trigger_key="bulk-2", gateway=gateway)
    assert (outcomes[0].ticket, outcomes[0].error) == (tickets[0], "boom")
    assert outcomes[1].state == IntentState.CONFIRMED


def test_hedging_close_never_opens_a_new_position(account, sim, terminal, gateway, clock):
    buy = _open(sim)
    sell = sim.sim_open_manual("EURUSD", "sell", "1.0")
    _close(account, gateway, buy)
    assert sim.sim_find_positions() == [sell]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ten_concurrent_close_requests_send_exactly_one_order(account, sim, terminal, gateway, clock):
    ticket = _open(sim)
    barrier = threading.Barrier(10)
    results, errors = [], []

    def request(index):
        try:
            barrier.wait(timeout=10)
            results.append(
                position_close(account=account, ticket=ticket, trigger_key="operator-1", gateway=gateway)
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert terminal.order_sends[ticket] == 1
    assert {r.state for r in results} == {IntentState.CONFIRMED}
    assert len({r.pk for r in results}) == 1
    assert CloseIntent.objects.count() == 1
    assert sim.sim_find_positions() == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ten_concurrent_requests_with_different_keys_still_send_one_order(
    account, sim, terminal, gateway, clock
):
    ticket = _open(sim)
    barrier = threading.Barrier(10)

    def request(index):
        try:
            barrier.wait(timeout=10)
            position_close(account=account, ticket=ticket, trigger_key=f"caller-{index}", gateway=gateway)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert terminal.order_sends[ticket] == 1
    assert set(CloseIntent.objects.values_list("state", flat=True)) == {IntentState.CONFIRMED}
