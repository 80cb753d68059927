"""get_gateway: one cached ManagedGateway per account per process, rebuilt when the config changes."""

import threading
from typing import Any

import pytest

from integrations.mt5 import backends, selection
from integrations.mt5.errors import GatewayUnavailable
from integrations.mt5.selection import ConnectionConfig, get_gateway, reset_gateways
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.tests import fakes

REAL_NATIVE_API = backends.native_api


@pytest.fixture(autouse=True)
def scripted_backends(monkeypatch):
    built = []

    def scripted(*args, **kwargs):
        api = fakes.ScriptedApi()
        built.append((args, kwargs, api))
        return api

    monkeypatch.setattr(backends, "simulated_api", scripted)
    monkeypatch.setattr(backends, "native_api", lambda: scripted("native"))
    reset_gateways()
    yield built
    reset_gateways()


def config(**overrides) -> ConnectionConfig:
    values: dict[str, Any] = {
        "account_key": "account-1",
        "backend": "simulated",
        "login": 5001,
        "server": "Sim-Demo",
        "password": "pw",
    }
    values.update(overrides)
    return ConnectionConfig(**values)


def test_one_gateway_per_account_is_reused(scripted_backends):
    first = get_gateway(config())
    assert isinstance(first, ManagedGateway)
    assert get_gateway(config()) is first
    assert get_gateway(config(account_key="account-2", login=5002)) is not first
    assert len(scripted_backends) == 2


def test_a_changed_config_replaces_and_closes_the_old_gateway(scripted_backends):
    first = get_gateway(config())
    first.connect()
    second = get_gateway(config(password="rotated"))
    assert second is not first
    assert not first.is_connected
    assert scripted_backends[0][2].names()[-1] == "shutdown"


def test_concurrent_callers_share_one_gateway():
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_gateway(config()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in results}) == 1


def test_the_native_module_serves_one_terminal_per_process():
    get_gateway(config(backend="native"))
    assert get_gateway(config(backend="native")) is not None  # the same account again is fine
    with pytest.raises(GatewayUnavailable, match="one terminal per process"):
        get_gateway(config(account_key="account-2", backend="native", login=6000))


def test_bridge_config_builds_a_bridge_client(settings):
    gateway = get_gateway(
        config(backend="bridge", bridge_url="http://127.0.0.1:18999", bridge_secret="s", server="Sim-Demo")
    )
    api = gateway.inner._api
    assert type(api).__name__ == "BridgeClient"
    assert api.url == "http://127.0.0.1:18999"
    assert api.timeout == settings.MT5_CALL_TIMEOUT_SECONDS


def test_bridge_defaults_come_from_settings(settings):
    settings.MT5_BRIDGE_URL = "http://127.0.0.1:18777"
    settings.MT5_BRIDGE_SECRET = "from-settings"
    api = get_gateway(config(backend="bridge")).inner._api
    assert api.url == "http://127.0.0.1:18777"


def test_bridge_without_a_secret_is_unavailable(settings):
    settings.MT5_BRIDGE_SECRET = ""
    with pytest.raises(GatewayUnavailable, match="MT5_BRIDGE_SECRET"):
        get_gateway(config(backend="bridge", bridge_url="http://127.0.0.1:1"))


def test_breaker_thresholds_come_from_settings(settings):
    settings.MT5_CIRCUIT_FAILURE_THRESHOLD = 7
    settings.MT5_CIRCUIT_RESET_SECONDS = 12.5
    breaker = get_gateway(config()).breaker
    assert breaker.failure_threshold == 7
    assert breaker.reset_seconds == 12.5
    assert type(selection.breaker_store()).__name__ == "RedisBreakerStore"


def test_config_validates_backend_and_hides_secrets():
    with pytest.raises(ValueError, match="unknown MT5 backend"):
        config(backend="mt5linux")
    text = repr(config(password="pa55", bridge_secret="b-secret"))
    assert "pa55" not in text
    assert "b-secret" not in text
    assert "login=5001" in text


def test_native_api_explains_itself_on_linux():
    with pytest.raises(GatewayUnavailable, match="bridge"):
        REAL_NATIVE_API()


def test_a_forked_child_starts_without_the_parents_gateways():
    import os

    get_gateway(config())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report how many gateways it inherited, then leave at once
        os.write(write, str(len(selection._gateways)).encode())
        os._exit(0)
    os.close(write)
    inherited = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert inherited == "0"
    assert len(selection._gateways) == 1


def test_the_gateway_cache_is_bounded_least_recently_used_out(scripted_backends, settings):
    settings.MT5_GATEWAY_CACHE_SIZE = 2
    first = get_gateway(config(account_key="a-1"))
    second = get_gateway(config(account_key="a-2"))
    second.connect()
    assert get_gateway(config(account_key="a-1")) is first  # used again: now the most recent
    get_gateway(config(account_key="a-3"))  # over the bound: a-2, the least recently used, goes
    assert list(selection._gateways) == ["a-1", "a-3"]
    assert not second.is_connected  # its connection closed
    assert get_gateway(config(account_key="a-2")) is not second  # built afresh when needed again
