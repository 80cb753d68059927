"""SimulatedTerminal: a terminal off its trade server, and balance operations of every non-trading deal type.

Pure tests (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.mt5 import constants as c
from integrations.mt5.simulated import SimClock, SimulatedTerminal, SimulatorError

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
def mt5():
    terminal = SimulatedTerminal(
        login=5001, password="pw", server="Sim-Demo", clock=SimClock.fixed(START), seed=3
    )
    assert terminal.initialize(login=5001, password="pw", server="Sim-Demo")
    terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    return terminal


def _close_request(mt5, ticket):
    position = mt5.positions_get(ticket=ticket)[0]
    return {
        "action": c.TRADE_ACTION_DEAL,
        "symbol": position.symbol,
        "volume": position.volume,
        "type": c.ORDER_TYPE_SELL,
        "position": ticket,
        "price": mt5.symbol_info_tick("EURUSD").bid,
        "deviation": 20,
        "type_filling": c.ORDER_FILLING_FOK,
    }


def test_off_the_trade_server_the_terminal_answers_like_a_real_one(mt5):
    ticket = mt5.sim_open_manual("EURUSD", "buy", "1.0")
    request = _close_request(mt5, ticket)
    before = mt5.account_info()

    mt5.sim_set_connected(False)
    mt5.sim_set_price("EURUSD", "1.07500", "1.07510")  # the market moves meanwhile

    assert mt5.terminal_info().connected is False
    assert mt5.positions_get() == ()  # no positions, though one is open
    assert mt5.account_info() == before  # the last values it had
    assert mt5.order_send(request).retcode == c.TRADE_RETCODE_CONNECTION
    assert mt5.sim_find_positions() == [ticket]  # nothing happened on the server

    mt5.sim_set_connected(True)
    assert [p.ticket for p in mt5.positions_get()] == [ticket]
    assert mt5.account_info().equity < before.equity  # live again: the loss shows
    assert mt5.order_send(_close_request(mt5, ticket)).retcode == c.TRADE_RETCODE_DONE


@pytest.mark.parametrize(
    ("kind", "deal_type", "moves"),
    [
        ("balance", c.DEAL_TYPE_BALANCE, "balance"),
        ("credit", c.DEAL_TYPE_CREDIT, "credit"),
        ("bonus", c.DEAL_TYPE_BONUS, "balance"),
        ("charge", c.DEAL_TYPE_CHARGE, "balance"),
        ("correction", c.DEAL_TYPE_CORRECTION, "balance"),
    ],
)
def test_a_balance_operation_books_a_deal_of_its_type(mt5, kind, deal_type, moves):
    before = mt5.account_info()
    ticket = mt5.sim_balance_operation(kind, "-250.5", "by the broker")
    after = mt5.account_info()
    deals = mt5.history_deals_get(START - timedelta(days=1), START + timedelta(days=1))
    deal = next(d for d in deals if d.ticket == ticket)
    assert (deal.type, deal.profit, deal.comment, deal.position_id) == (deal_type, -250.5, "by the broker", 0)
    assert getattr(after, moves) == pytest.approx(getattr(before, moves) - 250.5)
    assert after.equity == pytest.approx(before.equity - 250.5)
    other = "balance" if moves == "credit" else "credit"
    assert getattr(after, other) == getattr(before, other)


def test_an_unknown_balance_operation_is_refused(mt5):
    with pytest.raises(SimulatorError, match="unknown balance operation"):
        mt5.sim_balance_operation("gift", 10)
