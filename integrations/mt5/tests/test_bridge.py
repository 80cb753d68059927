"""The bridge server's authentication and whitelist, and the client's mapping of network trouble to IPC errors."""

import http.client
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from integrations.mt5 import structs
from integrations.mt5.bridge.client import BridgeClient, BridgeError
from integrations.mt5.bridge.server import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NativeBackend,
    SimulatedBackend,
    new_nonce,
    sign,
)
from integrations.mt5.tests import fakes

SECRET = "bridge-test-secret"
PASSWORD = "Tr4ding-Passw0rd!"
REPO = Path(__file__).resolve().parents[3]


class FakeRegistry:
    """Stands in for the simulator's registry: one ScriptedApi per (login, server)."""

    def __init__(self) -> None:
        self.terminals: dict[tuple[int, str], fakes.ScriptedApi] = {}

    def get_or_create(self, login: int, *, server: str, **options) -> fakes.ScriptedApi:
        return self.terminals.setdefault(
            (login, server), fakes.ScriptedApi(positions_get=(fakes.position(),))
        )

    def terminal(self, login: int, server: str) -> fakes.ScriptedApi:
        return self.get_or_create(login, server=server)


@pytest.fixture
def registry():
    return FakeRegistry()


@pytest.fixture
def bridge(registry):
    with fakes.running_bridge(SimulatedBackend(registry=registry), SECRET) as server:
        yield server


@pytest.fixture
def native_bridge(monkeypatch):
    module = fakes.ScriptedApi()
    monkeypatch.setitem(sys.modules, "MetaTrader5", module)
    with fakes.running_bridge(NativeBackend(), SECRET) as server:
        server.module = module
        yield server


def client(server, secret=SECRET, timeout=5.0) -> BridgeClient:
    return BridgeClient(server.url, secret, login=5001, server="Sim-Demo", timeout=timeout)


def raw_post(server, payload: dict, *, secret=SECRET, timestamp=None, nonce=None, signature=None):
    payload = {
        "login": 5001,
        "server": "Sim-Demo",
        "args": [],
        "kwargs": {},
        "nonce": nonce or new_nonce(),
        **payload,
    }
    body = json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature or sign(secret.encode(), ts, body)}
    connection = http.client.HTTPConnection(server.server_address[0], server.server_address[1], timeout=5)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# ---------------------------------------------------------------------- authentication


def test_signed_call_round_trips_structs(bridge, registry):
    c = client(bridge)
    assert c.initialize(timeout=1000) is True
    positions = c.positions_get(symbol="EURUSD")
    assert isinstance(positions, tuple)
    (p,) = positions
    assert isinstance(p, structs.TradePosition)
    assert p.ticket == 1001
    assert p.price_open == fakes.position().price_open  # floats survive JSON exactly
    assert c.last_error() == (1, "Success")
    assert registry.terminals[(5001, "Sim-Demo")].calls[-1] == ("positions_get", (), {"symbol": "EURUSD"})


def test_wrong_secret_is_401_and_nothing_executes(bridge, registry):
    status, body = raw_post(bridge, {"call": "account_info"}, secret="not-the-secret")
    assert status == 401
    assert body["message"] == "bad signature"
    c = client(bridge, secret="not-the-secret")
    assert c.account_info() is None
    assert c.last_error()[0] == -10003
    assert "rejected our signature" in c.last_error()[1]
    assert c.initialize() is False  # bool functions fail with False, like the module
    assert bridge.calls == 0
    assert registry.terminals == {}


def test_stale_or_future_timestamp_is_rejected(bridge):
    for skew in (-301, 301):
        status, body = raw_post(bridge, {"call": "account_info"}, timestamp=int(time.time()) + skew)
        assert status == 401
        assert "stale timestamp" in body["message"]
    status, _ = raw_post(bridge, {"call": "account_info"}, timestamp=int(time.time()) - 250)
    assert status == 200
    assert bridge.calls == 1


def test_missing_headers_and_replayed_nonce_are_rejected(bridge):
    connection = http.client.HTTPConnection(*bridge.server_address[:2], timeout=5)
    connection.request("POST", "/", body=b'{"call": "account_info"}')
    response = connection.getresponse()
    assert response.status == 401
    assert json.loads(response.read())["message"] == "missing signature headers"
    connection.close()
    nonce = new_nonce()
    assert raw_post(bridge, {"call": "account_info"}, nonce=nonce)[0] == 200
    status, body = raw_post(bridge, {"call": "account_info"}, nonce=nonce)
    assert status == 401
    assert "replayed" in body["message"]
    assert bridge.calls == 1


@pytest.mark.parametrize("call", ["eval", "__class__", "_answer", "fail", "sim bad", "shutdown_all"])
def test_non_whitelisted_calls_are_refused(bridge, registry, call):
    status, body = raw_post(bridge, {"call": call})
    assert status == 403
    assert "not allowed" in body["message"] or "no such call" in body["message"]
    assert all(not t.calls for t in registry.terminals.values())


def test_client_sees_a_refused_call_as_unsupported(bridge):
    c = client(bridge)
    assert c.call("eval", "1+1") is None
    assert c.last_error() == (-7, "Terminal: Unsupported function")


def test_sim_helpers_pass_through_on_a_simulated_bridge(bridge, registry):
    terminal = registry.terminal(5001, "Sim-Demo")
    terminal.answers["sim_set_price"] = lambda symbol, bid, ask: {"symbol": symbol, "bid": bid}
    assert client(bridge).sim_set_price("EURUSD", 1.1, 1.1001) == {"symbol": "EURUSD", "bid": 1.1}


def test_sim_helpers_are_refused_on_a_native_bridge(native_bridge):
    status, body = raw_post(native_bridge, {"call": "sim_set_price", "args": ["EURUSD", 1.1, 1.1001]})
    assert status == 403
    assert "not allowed on a native bridge" in body["message"]
    with pytest.raises(BridgeError, match="not allowed"):
        client(native_bridge).sim_set_price("EURUSD", 1.1, 1.1001)
    assert native_bridge.module.calls == []
    assert native_bridge.calls == 0


def test_native_bridge_serves_the_module(native_bridge):
    c = client(native_bridge)
    assert c.initialize(r"C:\MT5\terminal64.exe", portable=True, timeout=5000) is True
    assert native_bridge.module.calls[0] == (
        "initialize",
        (r"C:\MT5\terminal64.exe",),
        {"portable": True, "timeout": 5000},
    )
    assert c.account_info().login == 5001


def test_native_bridge_pinned_to_a_login_refuses_others(monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", fakes.ScriptedApi())
    with fakes.running_bridge(NativeBackend(login=7777), SECRET) as server:
        c = client(server)
        assert c.account_info() is None
        assert c.last_error()[0] == -6
        assert server.calls == 0


def test_get_health_needs_no_secret_and_says_nothing(bridge):
    connection = http.client.HTTPConnection(*bridge.server_address[:2], timeout=5)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"status": "ok", "backend": "simulated"}
    connection.close()


# ---------------------------------------------------------------------- results and errors


def test_none_and_last_error_pass_through(bridge, registry):
    terminal = registry.terminal(5001, "Sim-Demo")
    terminal.fail("order_send", -2, 'Invalid "volume" argument')
    c = client(bridge)
    assert c.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1}) is None
    assert c.last_error() == (-2, 'Invalid "volume" argument')
    assert terminal.calls[-1] == ("order_send", ({"action": 1, "symbol": "EURUSD", "volume": 0.1},), {})


def test_nested_request_struct_is_rebuilt(bridge):
    result = client(bridge).order_send({"action": 1, "symbol": "EURUSD", "volume": 0.3})
    assert isinstance(result, structs.OrderSendResult)
    assert isinstance(result.request, structs.TradeRequest)
    assert result.retcode == 10009


def test_system_error_is_raised_on_the_client_with_last_error(bridge, registry):
    registry.terminal(5001, "Sim-Demo").explode("history_deals_get", -10004, "No IPC connection")
    c = client(bridge)
    with pytest.raises(SystemError, match="on the bridge"):
        c.history_deals_get(position=1)
    assert c.last_error() == (-10004, "No IPC connection")


def test_datetime_arguments_travel(bridge, registry):
    from datetime import UTC, datetime

    since = datetime(2026, 3, 2, tzinfo=UTC)
    client(bridge).history_deals_get(since, datetime(2026, 3, 3, tzinfo=UTC))
    assert registry.terminal(5001, "Sim-Demo").calls[-1][1][0] == since


def test_keep_alive_connection_is_reused(bridge):
    c = client(bridge)
    c.account_info()
    first = c._local.connection
    c.terminal_info()
    assert c._local.connection is first
    assert first is not None


def test_passwords_are_never_logged_by_the_server(bridge, caplog):
    caplog.set_level(logging.DEBUG)
    c = client(bridge)
    assert c.initialize(login=5001, password=PASSWORD, server="Sim-Demo") is True
    assert c.login(5001, password=PASSWORD, server="Sim-Demo") is True
    assert "login" in caplog.text
    assert PASSWORD not in caplog.text
    assert SECRET not in caplog.text


# ---------------------------------------------------------------------- network trouble → IPC errors


def test_connection_refused_is_no_ipc_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = BridgeClient(f"http://127.0.0.1:{port}", SECRET, login=5001, server="Sim-Demo", timeout=1)
    assert c.account_info() is None
    assert c.last_error() == (-10004, "No IPC connection")
    assert c.login(5001, password=PASSWORD) is False


def test_no_answer_is_ipc_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the TCP connection, never answers
        c = BridgeClient(
            f"http://127.0.0.1:{silent.getsockname()[1]}", SECRET, login=5001, server="x", timeout=0.3
        )
        started = time.monotonic()
        assert c.order_send({"action": 1}) is None
        assert c.last_error() == (-10005, "IPC timeout")
        assert time.monotonic() - started < 3


def test_garbled_response_is_recv_failed():
    with socket.socket() as liar:
        liar.bind(("127.0.0.1", 0))
        liar.listen(1)

        def answer():
            conn, _ = liar.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!")
            conn.close()

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        c = BridgeClient(
            f"http://127.0.0.1:{liar.getsockname()[1]}", SECRET, login=5001, server="x", timeout=2
        )
        assert c.account_info() is None
        assert c.last_error() == (-10002, "IPC recv failed")
        thread.join(5)


def test_last_error_is_per_thread(bridge, registry):
    registry.terminal(5001, "Sim-Demo").fail("symbol_info", -1, "Terminal: Call failed")
    c = client(bridge)
    assert c.symbol_info("NOPE") is None
    seen = []
    thread = threading.Thread(target=lambda: seen.append(c.last_error()))
    thread.start()
    thread.join()
    assert seen == [(1, "Success")]
    assert c.last_error() == (-1, "Terminal: Call failed")


def test_bad_url_is_refused():
    with pytest.raises(ValueError, match="bridge url"):
        BridgeClient("ftp://host", SECRET, login=1, server="x")


# ---------------------------------------------------------------------- CLI


def run_cli(*args, env=None):
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


def test_cli_refuses_to_start_without_a_secret():
    result = run_cli("integrations/mt5/bridge/server.py", "--backend", "simulated", "--port", "0")
    assert result.returncode == 2
    assert "MT5_BRIDGE_SECRET" in result.stderr


def test_cli_native_backend_explains_itself_without_the_module():
    result = run_cli(
        "-m", "integrations.mt5.bridge.server", "--backend", "native", env={"MT5_BRIDGE_SECRET": "x"}
    )
    assert result.returncode == 2
    assert "MetaTrader5 module is not installed" in result.stderr


# ---------------------------------------------------------------------- keep-alive closed by the server


@pytest.fixture
def impatient_bridge(registry):
    with fakes.running_bridge(SimulatedBackend(registry=registry), SECRET, idle_timeout=0.2) as server:
        yield server


def test_a_read_is_retried_once_when_the_server_closed_the_idle_connection(impatient_bridge):
    c = client(impatient_bridge)
    assert c.account_info().login == 5001
    first = c._local.connection
    time.sleep(0.5)  # the server drops the idle keep-alive connection
    assert c.account_info().login == 5001
    assert c._local.connection is not first  # it was found closed and replaced
    assert c.last_error() == (1, "Success")
    assert impatient_bridge.calls == 2


def test_order_send_is_never_retried_on_a_closed_connection(impatient_bridge, registry):
    c = client(impatient_bridge)
    c.account_info()
    time.sleep(0.5)
    assert c.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1}) is None
    assert c.last_error() == (-10004, "No IPC connection")
    assert "order_send" not in registry.terminal(5001, "Sim-Demo").names()
    assert c.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1}).retcode == 10009  # fresh connection


def test_cli_serves_a_simulated_terminal_when_run_as_a_file():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, "integrations/mt5/bridge/server.py", "--backend", "simulated", "--port", str(port)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "MT5_BRIDGE_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        c = BridgeClient(f"http://127.0.0.1:{port}", SECRET, login=9100, server="Cli-Sim", timeout=2)
        deadline = time.monotonic() + 20
        while c.initialize() is not True:
            assert time.monotonic() < deadline, "the bridge did not come up"
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.1)
        assert c.account_info().login == 9100
        assert isinstance(c.symbol_info_tick("EURUSD"), structs.Tick)
    finally:
        process.terminate()
        process.wait(10)
        process.stderr.close()


def test_a_failing_login_never_echoes_its_arguments(bridge, registry, caplog):
    caplog.set_level(logging.DEBUG)

    def leaky_login(login, password="", **kwargs):
        raise ValueError(f"rejected {login}/{password}")

    registry.terminal(5001, "Sim-Demo").answers["login"] = leaky_login
    with pytest.raises(ValueError, match="on the bridge") as caught:
        client(bridge).login(5001, password=PASSWORD)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


def test_a_non_numeric_timestamp_is_rejected(bridge):
    status, body = raw_post(bridge, {"call": "account_info"}, timestamp="nan")
    assert status == 401
    assert body["message"] == "malformed timestamp"
