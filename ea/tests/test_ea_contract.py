"""The `ea` backend against the contract: for one terminal, what the gateway reads through the EA's pushes is what it
reads from the terminal itself (the `simulated` backend on the same simulated terminal), field for field."""

from datetime import timedelta

import pytest
from django.test import Client

from ea.services import ea_link_create
from ea.tests.conftest import ClientTransport
from integrations.mt5 import ConnectionConfig, get_gateway
from integrations.mt5.ea.emulator import EaEmulator
from integrations.mt5.simulated import default_registry

pytestmark = pytest.mark.django_db
SERVER = "Contract-EA"


@pytest.fixture
def pair(trader):
    from accounts.services import trading_account_create

    login = 9_200_001
    default_registry().remove(login, SERVER) if (login, SERVER) in default_registry() else None
    terminal = default_registry().create_account(login, server=SERVER, password="x", balance=10_000)
    terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    terminal.sim_set_price("XAUUSD", "2350.10", "2350.40")
    account = trading_account_create(owner=trader, login=login, server=SERVER, backend="ea")
    _link, key = ea_link_create(account=account)
    emulator = EaEmulator(
        api=terminal, transport=ClientTransport(Client()), key_id=key.key_id, secret=key.secret
    )
    emulator.start()
    # The broker clock offset is configured on both: measured, it needs a tick seen arriving (for the EA, two
    # pushes), which integrations/mt5/tests/test_broker_clock.py covers; here the mappings are compared.
    offset = int(terminal.clock.server_utc_offset.total_seconds())
    direct = get_gateway(ConnectionConfig(account_key="contract-direct", backend="simulated", login=login,
                                          server=SERVER, password="x", server_utc_offset_seconds=offset))  # fmt: skip
    via_ea = get_gateway(ConnectionConfig(account_key=f"account-{account.pk}", backend="ea", login=login,
                                          server=SERVER, server_utc_offset_seconds=offset))  # fmt: skip
    yield terminal, emulator, direct, via_ea
    default_registry().remove(login, SERVER)


def test_account_positions_deals_symbols_and_ticks_read_the_same(pair):
    terminal, emulator, direct, via_ea = pair
    terminal.sim_open_manual("EURUSD", "buy", "0.30", sl="1.08000", tp="1.09500", comment="bt-7")
    closed = terminal.sim_open_manual("XAUUSD", "sell", "0.10")
    terminal.sim_close_manual(closed)
    terminal.sim_open_manual("XAUUSD", "sell", "0.20", magic=5150)
    emulator.push()

    a, b = direct.account(), via_ea.account()
    for field in ("login", "server", "company", "name", "currency", "currency_digits", "leverage", "margin_mode",
                  "balance", "credit", "profit", "equity", "margin", "margin_free", "margin_level",
                  "margin_so_call", "margin_so_so"):  # fmt: skip
        assert getattr(a, field) == getattr(b, field), field
    assert direct.positions() == via_ea.positions()
    now = a.time
    assert direct.deals(since=now - timedelta(days=1), until=now + timedelta(minutes=1)) == via_ea.deals(
        since=now - timedelta(days=1), until=now + timedelta(minutes=1)
    )
    assert direct.deals_for_position(position_id=closed) == via_ea.deals_for_position(position_id=closed)
    for symbol in ("EURUSD", "XAUUSD"):
        spec_direct, spec_ea = direct.symbol(symbol), via_ea.symbol(symbol)
        for field in ("digits", "point", "trade_tick_size", "trade_tick_value", "trade_contract_size", "volume_min",
                      "volume_max", "volume_step", "filling_mode", "currency_profit", "currency_margin"):  # fmt: skip
            assert getattr(spec_direct, field) == getattr(spec_ea, field), (symbol, field)
        assert (direct.tick(symbol).bid, direct.tick(symbol).ask) == (
            via_ea.tick(symbol).bid,
            via_ea.tick(symbol).ask,
        )


def test_empty_results_are_empty_and_unknown_symbols_are_invalid(pair):
    from integrations.mt5.errors import GatewayInvalidRequest

    _terminal, emulator, _direct, via_ea = pair
    emulator.push()
    assert via_ea.positions() == ()
    assert via_ea.positions(ticket=123456) == ()
    with pytest.raises(GatewayInvalidRequest):
        via_ea.symbol("NOSUCHSYMBOL")
