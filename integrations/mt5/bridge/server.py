#!/usr/bin/env python3
"""The MT5 bridge server: the official module's function API over authenticated HTTP, one terminal per server.

Standalone on purpose: standard library only, plus the official `MetaTrader5` module (`--backend native`, on
Windows or Wine Python next to the terminal) or our simulator (`--backend simulated`, demo and CI). Copy this one
file to a Windows host and run it; nothing else from the project is needed for the native backend.

    MT5_BRIDGE_SECRET=... python integrations/mt5/bridge/server.py --backend native --port 18812
    MT5_BRIDGE_SECRET=... python -m integrations.mt5.bridge.server --backend simulated

Protocol (one endpoint, `POST /`):

* body: JSON `{"login": int, "server": str, "call": "positions_get", "args": [...], "kwargs": {...}, "nonce": str}`;
* headers: `X-MT5-Timestamp` (epoch seconds) and `X-MT5-Signature` = hex HMAC-SHA256(secret, timestamp + "\\n" +
  body). Compared in constant time; |now - timestamp| > 300 s, a reused nonce or a bad signature → 401 with
  `{"message": ...}` and nothing executed;
* `shutdown` is answered True without touching the terminal (the bridge owns the terminal's lifecycle: one client's
  shutdown must not disconnect every other client); the bridge shuts its terminal down when it stops;
* only MT5 function names are callable (and `sim_*` helpers with `--backend simulated` only) → else 403;
* 200 → `{"result": <plain data>, "last_error": [code, description]}` where structs travel as
  `{"__struct__": "TradePosition", "fields": {...}}` (`_asdict()`), tuples as lists, numpy arrays as
  `{"__ndarray__": rows, "names": [...]}`, datetimes as `{"__datetime__": iso}`. A Python exception in the call
  (the C extension's SystemError) → `{"exception": {"type": ..., "message": ...}, "last_error": ...}`.

Never logged: request bodies (initialize/login carry the trading password) and the secret.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger("mt5.bridge")

TIMESTAMP_HEADER = "X-MT5-Timestamp"
SIGNATURE_HEADER = "X-MT5-Signature"
MAX_SKEW_SECONDS = 300
MAX_BODY_BYTES = 1 << 20
SENSITIVE_CALLS = frozenset({"initialize", "login"})  # their arguments hold the trading password
IDLE_TIMEOUT_SECONDS = 120  # keep-alive connections idle longer than this are closed by the server
SUCCESS = (1, "Success")
# The bridge owns its terminal's lifecycle: a client's `shutdown` is answered here and never reaches the terminal,
# which every process using this bridge shares. The terminal is shut down once, when the bridge itself stops.
LIFECYCLE_CALLS = frozenset({"shutdown"})

# The official module's functions (REFERENCE §1-8). Nothing else is callable.
MT5_FUNCTIONS = frozenset(
    {
        "initialize",
        "login",
        "shutdown",
        "version",
        "last_error",
        "account_info",
        "terminal_info",
        "symbols_total",
        "symbols_get",
        "symbol_info",
        "symbol_info_tick",
        "symbol_select",
        "market_book_add",
        "market_book_get",
        "market_book_release",
        "copy_rates_from",
        "copy_rates_from_pos",
        "copy_rates_range",
        "copy_ticks_from",
        "copy_ticks_range",
        "orders_total",
        "orders_get",
        "order_calc_margin",
        "order_calc_profit",
        "order_check",
        "order_send",
        "positions_total",
        "positions_get",
        "history_orders_total",
        "history_orders_get",
        "history_deals_total",
        "history_deals_get",
    }
)


# ---------------------------------------------------------------------- wire format (shared with client.py)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode("ascii") + b"\n" + body, hashlib.sha256).hexdigest()


def to_wire(value: Any) -> Any:
    """Plain JSON data from whatever the module returned."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "_asdict"):  # the module's struct sequences and our structs
        return {
            "__struct__": type(value).__name__,
            "fields": {k: to_wire(v) for k, v in value._asdict().items()},
        }
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        names = getattr(value.dtype, "names", None)
        if names is None:  # a numpy scalar or plain array
            return to_wire(value.tolist())
        return {"__ndarray__": [to_wire(tuple(row)) for row in value.tolist()], "names": list(names)}
    if isinstance(value, tuple | list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    raise TypeError(f"cannot send a {type(value).__name__} over the bridge")


def from_wire(
    value: Any,
    rebuild: Callable[[str, dict[str, Any]], Any] | None = None,
    array: Callable[[tuple[tuple[Any, ...], ...], tuple[str, ...]], Any] | None = None,
) -> Any:
    """The inverse of to_wire. Lists become tuples (the module returns tuples); structs go through `rebuild`,
    structured arrays through `array` (both default to plain dicts/tuples)."""
    if isinstance(value, list):
        return tuple(from_wire(v, rebuild, array) for v in value)
    if isinstance(value, dict):
        if "__struct__" in value:
            fields = {k: from_wire(v, rebuild, array) for k, v in value["fields"].items()}
            return rebuild(value["__struct__"], fields) if rebuild else fields
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
        if "__ndarray__" in value:
            rows = tuple(tuple(from_wire(v, rebuild, array) for v in row) for row in value["__ndarray__"])
            return array(rows, tuple(value["names"])) if array else rows
        return {k: from_wire(v, rebuild, array) for k, v in value.items()}
    return value


def args_from_wire(value: Any) -> Any:
    """Call arguments: like from_wire, but lists stay lists and dicts stay dicts (order_send takes a dict)."""
    if isinstance(value, list):
        return [args_from_wire(v) for v in value]
    if isinstance(value, dict):
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
        return {k: args_from_wire(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------- backends


class NativeBackend:
    """The official module: a process-wide singleton, so every call goes through one lock (REFERENCE §10)."""

    name = "native"

    def __init__(self, *, login: int | None = None) -> None:
        import MetaTrader5  # type: ignore[import-not-found]  # noqa: TID251 - the bridge host runs the module

        self._mt5 = MetaTrader5
        self._lock = threading.Lock()
        self._pinned_login = login

    def allows(self, call: str) -> bool:
        return call in MT5_FUNCTIONS

    def refuses_account(self, login: int, server: str) -> str | None:
        if self._pinned_login is not None and login != self._pinned_login:
            return f"this bridge serves login {self._pinned_login} only"
        return None

    def invoke(
        self, login: int, server: str, call: str, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[Any, Any]:
        with self._lock:
            try:
                return getattr(self._mt5, call)(*args, **kwargs), self._mt5.last_error()
            except Exception:
                raise _CallFailed(self._mt5.last_error()) from sys.exc_info()[1]

    def close(self) -> None:
        """The bridge is stopping: detach from the terminal (the only place the module's shutdown() is called)."""
        with self._lock:
            self._mt5.shutdown()


class SimulatedBackend:
    """Many simulated terminals, one per (login, server), from the simulator's registry.

    A terminal is created on first use (the registry's defaults, any password); `sim_create_account` (kwargs:
    balance, currency, leverage, margin_mode, password, symbols, ...) provisions one with chosen settings and
    `sim_remove_account` forgets it. Every other `sim_*` call goes to the account's terminal.

    With a `store` (`--state-dir`), the terminals outlive the bridge process: saved terminals are restored at start,
    a terminal is saved after every call that can change it (order_send, initialize/login, sim_* helpers), all of
    them every `save_seconds` (prices and the clock move on their own) and when the bridge stops. A restarted
    bridge then looks to its clients like a dropped connection, not like new accounts with fresh history.
    """

    name = "simulated"
    ACCOUNT_CALLS = frozenset({"sim_create_account", "sim_remove_account"})
    CHANGING_CALLS = frozenset({"order_send", "initialize", "login"})  # plus every sim_* helper

    def __init__(self, registry: Any = None, *, store: Any = None, save_seconds: float = 5.0) -> None:
        if registry is None:
            from integrations.mt5.simulated import default_registry

            registry = default_registry()
        self._registry = registry
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._store = store
        self._save_lock = threading.Lock()  # one save at a time: an older picture never replaces a newer one
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None
        if store is not None:
            restored = store.load_into(registry)
            logger.info("simulated bridge: %d terminal(s) restored from %s", restored, store.directory)
            if save_seconds > 0:
                self._saver = threading.Thread(
                    target=self._save_periodically, args=(save_seconds,), name="sim-state-saver", daemon=True
                )
                self._saver.start()

    def allows(self, call: str) -> bool:
        return call in MT5_FUNCTIONS or (call.startswith("sim_") and call.isidentifier())

    def refuses_account(self, login: int, server: str) -> str | None:
        return None

    def _lock_for(self, key: tuple[int, str]) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def invoke(
        self, login: int, server: str, call: str, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[Any, Any]:
        if call in self.ACCOUNT_CALLS:
            try:
                if call == "sim_create_account":
                    self._save(self._registry.create_account(login, server=server, **kwargs))
                else:
                    self._registry.remove(login, server)
                    if self._store is not None:
                        with self._save_lock:
                            self._store.forget(login, server)
            except Exception:
                raise _CallFailed(SUCCESS) from sys.exc_info()[1]
            return None, SUCCESS
        terminal = self._registry.get_or_create(login, server=server, password=None)
        function = getattr(terminal, call, None)
        if function is None:
            raise _NotCallable(call)
        try:
            with self._lock_for((login, server)):
                try:
                    return function(*args, **kwargs), terminal.last_error()
                except Exception:
                    raise _CallFailed(terminal.last_error()) from sys.exc_info()[1]
        finally:
            if call in self.CHANGING_CALLS or call.startswith("sim_"):
                self._save(terminal)

    # -- persistence

    def _save(self, terminal: Any) -> None:
        if self._store is None:
            return
        try:
            with self._save_lock:
                self._store.save(terminal)
        except Exception:  # a full disk must not fail the call itself; the next save tries again
            logger.exception("simulated bridge: could not save %s", terminal)

    def save_all(self) -> int:
        if self._store is None:
            return 0
        with self._save_lock:
            return int(self._store.save_all(self._registry))

    def _save_periodically(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.save_all()

    def close(self) -> None:
        """The bridge is stopping: save every terminal one last time."""
        self._stop.set()
        if self._saver is not None:
            self._saver.join(timeout=30)
        saved = self.save_all()
        if self._store is not None:
            logger.info("simulated bridge: %d terminal(s) saved to %s", saved, self._store.directory)


class _CallFailed(Exception):
    def __init__(self, last_error: Any) -> None:
        super().__init__("call raised")
        self.last_error = last_error


class _NotCallable(Exception):
    pass


# ---------------------------------------------------------------------- HTTP


class BridgeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        backend: Any,
        secret: bytes,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        if not secret:
            raise ValueError("the bridge needs a shared secret")
        super().__init__(address, BridgeHandler)
        self.backend = backend
        self.secret = secret
        self.idle_timeout = idle_timeout
        self.calls = 0  # calls executed (tests check that refused requests executed nothing)
        self._nonces: dict[str, float] = {}
        self._nonce_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout) closes its connection before we answer: expected, not a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.info("bridge: %s went away before the answer", client_address[0])
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def fresh_nonce(self, nonce: str, now: float) -> bool:
        """True the first time a nonce is seen within the skew window (replay protection)."""
        with self._nonce_lock:
            if len(self._nonces) > 10_000 or (self._nonces and next(iter(self._nonces.values())) < now):
                self._nonces = {n: t for n, t in self._nonces.items() if t >= now}
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now + 2 * MAX_SKEW_SECONDS
            return True


class BridgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: BridgeServer
    server_version = "mt5-bridge/1"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # The read timeout of the connection: idle keep-alive connections are closed after it.
        self.connection.settimeout(self.server.idle_timeout)
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        # Liveness only: says nothing about terminals and needs no secret.
        self._reply(HTTPStatus.OK, {"status": "ok", "backend": self.server.backend.name})

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "body missing or too large"})
            return
        body = self.rfile.read(length)

        problem = self._authenticate(body)
        if problem:
            logger.warning("bridge: rejected request from %s: %s", self.address_string(), problem)
            self._reply(HTTPStatus.UNAUTHORIZED, {"message": problem})
            return
        try:
            request = json.loads(body)
            login = int(request["login"])
            server = str(request.get("server") or "")
            call = str(request["call"])
            args = args_from_wire(request.get("args") or [])
            kwargs = args_from_wire(request.get("kwargs") or {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("args must be a list and kwargs an object")
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": f"malformed request: {type(exc).__name__}"})
            return
        nonce = str(request.get("nonce") or "")
        if not nonce or not self.server.fresh_nonce(nonce, time.time()):
            logger.warning("bridge: replayed or nonce-less request from %s", self.address_string())
            self._reply(
                HTTPStatus.UNAUTHORIZED, {"message": "replayed request (nonce already used or missing)"}
            )
            return

        backend = self.server.backend
        if not backend.allows(call):
            logger.warning("bridge: refused call %r from %s", call, self.address_string())
            self._reply(
                HTTPStatus.FORBIDDEN,
                {
                    "message": f"call not allowed on a {backend.name} bridge: {call}",
                    "last_error": [-7, "Terminal: Unsupported function"],
                },
            )
            return
        refused = backend.refuses_account(login, server)
        if refused:
            self._reply(
                HTTPStatus.FORBIDDEN,
                {"message": refused, "last_error": [-6, f"Terminal: Authorization failed ({refused})"]},
            )
            return

        started = time.perf_counter()
        self.server.calls += 1
        try:
            if call in LIFECYCLE_CALLS:
                result, last_error = True, SUCCESS
            else:
                result, last_error = backend.invoke(login, server, call, args, kwargs)
            payload: dict[str, Any] = {"result": to_wire(result), "last_error": list(last_error)}
        except TypeError as exc:  # a result to_wire cannot encode
            payload = {
                "exception": {"type": "TypeError", "message": str(exc)},
                "last_error": [-10002, "IPC recv failed"],
            }
        except _NotCallable:
            self._reply(
                HTTPStatus.FORBIDDEN,
                {"message": f"no such call: {call}", "last_error": [-7, "Terminal: Unsupported function"]},
            )
            return
        except _CallFailed as failed:
            cause = failed.__cause__
            # Never echo the message of a failed initialize/login: it could quote an argument (the password).
            message = "" if call in SENSITIVE_CALLS else str(cause)[:500]
            payload = {
                "exception": {"type": type(cause).__name__, "message": message},
                "last_error": list(failed.last_error),
            }
            logger.warning("bridge: %s for login %s raised %s", call, login, type(cause).__name__)
        # The call name and login only: the arguments of initialize/login hold the trading password.
        logger.debug("bridge: %s login=%s %.1f ms", call, login, (time.perf_counter() - started) * 1000)
        self._reply(HTTPStatus.OK, payload)

    def _authenticate(self, body: bytes) -> str | None:
        timestamp = self.headers.get(TIMESTAMP_HEADER, "")
        signature = self.headers.get(SIGNATURE_HEADER, "")
        if not timestamp or not signature:
            return "missing signature headers"
        if not timestamp.isdigit():
            return "malformed timestamp"
        skew = abs(time.time() - int(timestamp))
        expected = sign(self.server.secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            return "bad signature"
        if skew > MAX_SKEW_SECONDS:
            return f"stale timestamp (skew {skew:.0f}s > {MAX_SKEW_SECONDS}s)"
        return None


def make_server(
    *,
    backend: Any,
    secret: str | bytes,
    host: str = "127.0.0.1",
    port: int = 18812,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
) -> BridgeServer:
    """A ready server (call serve_forever()); port 0 picks a free port (see `.url`)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return BridgeServer((host, port), backend=backend, secret=key, idle_timeout=idle_timeout)


def new_nonce() -> str:
    return secrets.token_hex(16)


# ---------------------------------------------------------------------- CLI


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MT5 bridge server (one terminal per server for native).")
    parser.add_argument("--backend", choices=("simulated", "native"), default="simulated")
    parser.add_argument(
        "--host", default="127.0.0.1", help="bind address (default loopback; never a public one)"
    )
    parser.add_argument("--port", type=int, default=18812)
    parser.add_argument(
        "--secret-env",
        default="MT5_BRIDGE_SECRET",
        help="name of the environment variable holding the shared secret (the secret is never a CLI argument)",
    )
    parser.add_argument("--login", type=int, default=None, help="native: serve only this login")
    parser.add_argument(
        "--state-dir",
        default=None,
        help="simulated: keep the terminals' state in this directory across restarts (default: in memory only)",
    )
    parser.add_argument(
        "--save-seconds",
        type=float,
        default=5.0,
        help="simulated: save every terminal this often (with --state-dir)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    secret = os.environ.get(options.secret_env, "")
    if not secret:
        print(f"error: the shared secret is missing: set {options.secret_env}", file=sys.stderr)
        return 2
    if options.backend == "native" and options.state_dir:
        print(
            "error: --state-dir is for --backend simulated (a real terminal keeps its own state)",
            file=sys.stderr,
        )
        return 2
    if options.backend == "native":
        try:
            backend: Any = NativeBackend(login=options.login)
        except ImportError:
            print(
                "error: the MetaTrader5 module is not installed (Windows/Wine Python only)", file=sys.stderr
            )
            return 2
    else:
        store = None
        if options.state_dir:
            from integrations.mt5.simulated.persistence import TerminalStateStore

            store = TerminalStateStore(options.state_dir)
        backend = SimulatedBackend(store=store, save_seconds=options.save_seconds)
    if options.host not in ("127.0.0.1", "::1", "localhost"):
        logger.warning(
            "bridge bound to %s: make sure only a private network or a tunnel can reach it", options.host
        )
    server = make_server(backend=backend, secret=secret, host=options.host, port=options.port)
    logger.info("mt5 bridge (%s) listening on %s", backend.name, server.url)
    # SIGTERM (honcho, systemd, the service manager) stops the server the same way as Ctrl-C, so the terminal is
    # shut down (native) or saved (simulated) before the process exits. shutdown() must not run on the serving thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        # Run as a file: make the repository importable for --backend simulated.
        sys.path.insert(
            0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        )
    sys.exit(main())
