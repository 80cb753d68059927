"""An account on the `ea` backend, its key, a simulated terminal behind it, and an emulated EA speaking the protocol
to our own views through Django's test client (in process) or to a live server (threads)."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import GatewayBackend, TradingAccount
from accounts.services import trading_account_create
from ea.models import EaLink
from ea.services import IssuedKey, ea_link_create
from integrations.mt5 import reset_gateways
from integrations.mt5.ea.emulator import EaEmulator
from integrations.mt5.simulated import SimulatedTerminal

SERVER = "EaBroker-Live"


class ClientTransport:
    """The emulator's HTTP, through Django's test client (the whole view stack, signatures included)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        response = self.client.generic(
            method, path, data=body, content_type="application/json", headers=headers
        )
        return response.status_code, response.json() if response.content else {}


@pytest.fixture(autouse=True)
def _fresh_gateways() -> Iterator[None]:
    reset_gateways()
    yield
    reset_gateways()


@pytest.fixture
def ea_account(trader) -> TradingAccount:
    return trading_account_create(owner=trader, login=9_100_001, server=SERVER, backend=GatewayBackend.EA)


@pytest.fixture
def ea_key(ea_account) -> tuple[EaLink, IssuedKey]:
    return ea_link_create(account=ea_account)


@pytest.fixture
def terminal() -> SimulatedTerminal:
    sim = SimulatedTerminal(login=9_100_001, server=SERVER, balance="10000")
    sim.sim_set_price("EURUSD", "1.08500", "1.08510")
    return sim


@pytest.fixture
def emulator(terminal, ea_key) -> EaEmulator:
    _link, key = ea_key
    ea = EaEmulator(api=terminal, transport=ClientTransport(Client()), key_id=key.key_id, secret=key.secret)
    ea.start()
    return ea
