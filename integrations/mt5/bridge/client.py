"""BridgeClient: the official module's function API, answered by a bridge server over HTTP.

Same function names and the same conventions as `MetaTrader5`: results are the structs of `integrations.mt5.structs`
(rebuilt from the `_asdict()` dicts the server sends), failures return None/False and set `last_error()`. Network
trouble looks exactly like the real module's IPC trouble:

* connection refused / reset / closed, bad HTTP → None with `(-10004, 'No IPC connection')`;
* no answer within `timeout` → None with `(-10005, 'IPC timeout')` (the call may still have run: an order_send that
  timed out must be reconciled, as with the real module);
* the server refused our signature (HTTP 401) → None with `(-10003, 'IPC initialize failed, bridge ...')`;
* a garbled response → None with `(-10002, 'IPC recv failed')`.

`shutdown()` and `close()` only drop this thread's HTTP connection: the bridge owns the terminal's lifecycle, so one
client's timeout or shutdown never disconnects the terminal for the other processes that share the bridge.

`last_error()` is per thread (each thread sees the outcome of its own last call). One keep-alive `http.client`
connection per thread. Read-only calls are retried once on a fresh connection when a *reused* keep-alive connection
turns out to be closed; `order_send` and `sim_*` helpers are never retried (they are not idempotent).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from integrations.mt5 import structs
from integrations.mt5.bridge.server import (
    MT5_FUNCTIONS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    from_wire,
    new_nonce,
    sign,
    to_wire,
)

logger = logging.getLogger(__name__)

NO_IPC = (-10004, "No IPC connection")
IPC_TIMEOUT = (-10005, "IPC timeout")
IPC_RECV_FAILED = (-10002, "IPC recv failed")
AUTH_REJECTED = (-10003, "IPC initialize failed, bridge rejected our signature (check MT5_BRIDGE_SECRET)")
SUCCESS = (1, "Success")

_NOT_RETRIED = frozenset({"order_send"})
_REUSE_IDLE_SECONDS = 60.0  # below the server's idle timeout, so a kept connection is normally still open
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)
_BOOL_FUNCTIONS = frozenset(
    {"initialize", "login", "symbol_select", "market_book_add", "market_book_release"}
)


class BridgeError(RuntimeError):
    """A sim_* helper (or a refused call) failed on the bridge; MT5 functions never raise this."""


def _rebuild(type_name: str, fields: dict[str, Any]) -> Any:
    if type_name in structs.STRUCT_TYPES:
        return structs.struct_from_dict(type_name, fields)
    return fields


def _records(rows: tuple[tuple[Any, ...], ...], names: tuple[str, ...]) -> tuple[Any, ...]:
    """A numpy structured array from a native bridge → Rate/Tick records when the columns match, else tuples."""
    for cls in (structs.Rate, structs.Tick):
        if names == structs.field_names(cls):
            return tuple(cls(*row) for row in rows)
    return rows


def _decode(value: Any) -> Any:
    return from_wire(value, _rebuild, _records)


class _Conn(threading.local):
    connection: http.client.HTTPConnection | None = None
    reused: bool = False
    last_used: float = 0.0
    last_error: tuple[int, str] = SUCCESS


class BridgeClient:
    def __init__(self, url: str, secret: str, *, login: int, server: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bridge url must be http(s)://host:port, got {url!r}")
        self.url = (
            f"{parts.scheme}://{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self.__secret = secret.encode()
        self.login_number = int(login)
        self.server = server
        self.timeout = float(timeout)
        self._local = _Conn()

    def __repr__(self) -> str:
        return f"<BridgeClient {self.url} login={self.login_number} server={self.server!r}>"

    # ------------------------------------------------------------------ transport

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        """This thread's keep-alive connection (`_local.reused` says whether it carried a call before)."""
        local = self._local
        now = time.monotonic()
        if local.connection is not None and now - local.last_used > _REUSE_IDLE_SECONDS:
            self._drop()
        local.reused = local.connection is not None
        if local.connection is None:
            if self._https:
                local.connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                local.connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        connection = local.connection
        connection.timeout = timeout
        fresh = connection.sock is None
        if fresh:
            connection.connect()
        sock: socket.socket | None = connection.sock
        if sock is not None:
            if fresh:  # the body follows the headers in a second write: no Nagle delay on it
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
        return connection

    def _drop(self) -> None:
        connection, self._local.connection = self._local.connection, None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close this thread's keep-alive connection."""
        self._drop()

    def shutdown(self) -> bool:
        """The bridge owns its terminal: a client's shutdown drops only this thread's HTTP connection and never
        reaches the terminal, which every other process using the bridge shares (REFERENCE §10)."""
        self._drop()
        self._local.last_error = SUCCESS
        return True

    def _post(
        self, call: str, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
    ) -> tuple[int, bytes]:
        body = json.dumps(
            {
                "login": self.login_number,
                "server": self.server,
                "call": call,
                "args": to_wire(list(args)),
                "kwargs": to_wire(kwargs),
                "nonce": new_nonce(),
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.__secret, timestamp, body),
        }
        connection = self._connection(timeout)
        connection.request("POST", self._path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self._local.last_used = time.monotonic()
        if response.will_close:
            self._drop()
        return response.status, data

    def _exchange(
        self, call: str, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
    ) -> tuple[int, bytes]:
        retriable = call not in _NOT_RETRIED and not call.startswith("sim_")
        try:
            return self._post(call, args, kwargs, timeout)
        except _STALE_CONNECTION:
            reused = self._local.reused
            self._drop()
            if not (retriable and reused):
                raise
            return self._post(call, args, kwargs, timeout)

    # ------------------------------------------------------------------ calls

    def _timeout_for(self, call: str, kwargs: dict[str, Any]) -> float:
        # initialize/login block up to their own `timeout` (ms) in the terminal: wait a little longer than that.
        if call in ("initialize", "login") and kwargs.get("timeout"):
            return max(self.timeout, float(kwargs["timeout"]) / 1000 + 5)
        if call in ("initialize", "login"):
            return max(self.timeout, 65.0)
        return self.timeout

    def _fail(self, error: tuple[int, str], call: str) -> Any:
        self._local.last_error = error
        if call.startswith("sim_"):
            raise BridgeError(f"{call} failed on the bridge: {error[1]}")
        return False if call in _BOOL_FUNCTIONS else None

    def call(self, call: str, *args: Any, **kwargs: Any) -> Any:
        """Invoke one function on the bridge; the MT5 conventions apply (see module docstring)."""
        try:
            status, data = self._exchange(call, args, kwargs, self._timeout_for(call, kwargs))
        except TimeoutError:
            self._drop()
            return self._fail(IPC_TIMEOUT, call)
        except (OSError, http.client.HTTPException):
            self._drop()
            return self._fail(NO_IPC, call)
        try:
            payload = json.loads(data)
        except ValueError:
            return self._fail(IPC_RECV_FAILED, call)
        if status == 401:
            logger.warning("bridge %s rejected our request: %s", self.url, payload.get("message"))
            return self._fail(AUTH_REJECTED, call)
        if status != 200:
            error = payload.get("last_error") or IPC_RECV_FAILED
            if call.startswith("sim_"):
                self._local.last_error = tuple(error)
                raise BridgeError(payload.get("message") or f"HTTP {status}")
            return self._fail((int(error[0]), str(error[1])), call)
        code, description = payload.get("last_error") or SUCCESS
        self._local.last_error = (int(code), str(description))
        if "exception" in payload:
            raise _exception(payload["exception"])
        try:
            return _decode(payload.get("result"))
        except (ValueError, KeyError, TypeError):
            return self._fail(IPC_RECV_FAILED, call)

    def last_error(self) -> tuple[int, str]:
        return self._local.last_error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # The simulator's sim_* helpers (a native bridge refuses them: BridgeError).
        if name.startswith("sim_"):

            def helper(*args: Any, **kwargs: Any) -> Any:
                return self.call(name, *args, **kwargs)

            helper.__name__ = name
            return helper
        raise AttributeError(name)


def _function(name: str) -> Callable[..., Any]:
    def function(self: BridgeClient, *args: Any, **kwargs: Any) -> Any:
        return self.call(name, *args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"MetaTrader5.{name}(), answered by the bridge."
    return function


# The module's functions, as real methods with the official names (last_error and shutdown stay local).
for _name in sorted(MT5_FUNCTIONS - {"last_error", "shutdown"}):
    setattr(BridgeClient, _name, _function(_name))


_EXCEPTIONS: dict[str, type[Exception]] = {
    "SystemError": SystemError,
    "TypeError": TypeError,
    "ValueError": ValueError,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
}


def _exception(info: dict[str, Any]) -> Exception:
    """Re-raise the server-side exception as the same built-in type (SystemError from the C extension, mostly)."""
    kind = _EXCEPTIONS.get(str(info.get("type")), BridgeError)
    return kind(f"{info.get('type')} on the bridge: {info.get('message', '')}")
