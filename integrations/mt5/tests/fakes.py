"""A scripted stand-in for the MetaTrader5 module: recorded terminal payloads in the official struct shapes.

Pure mapping tests feed these through TerminalGateway; they need neither the simulator nor a network.
`running_bridge` serves a real bridge server from a thread for the bridge and contract tests.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from integrations.mt5 import structs
from integrations.mt5.bridge.server import BridgeServer, make_server

SERVER_OFFSET = 7200  # the payloads below are on a UTC+2 server clock
# 2026-03-02 10:00:00 UTC == 12:00:00 on the server clock.
UTC_EPOCH = 1772445600
SERVER_EPOCH = UTC_EPOCH + SERVER_OFFSET


def account_info(**overrides: Any) -> structs.AccountInfo:
    data: dict[str, Any] = {
        "login": 5001,
        "trade_mode": 0,
        "leverage": 100,
        "limit_orders": 200,
        "margin_so_mode": 0,
        "trade_allowed": True,
        "trade_expert": True,
        "margin_mode": 2,
        "currency_digits": 2,
        "fifo_close": False,
        "balance": 10000.0,
        "credit": 0.0,
        "profit": -12.345,
        "equity": 9987.655,
        "margin": 217.02,
        "margin_free": 9770.635,
        "margin_level": 4602.1334,
        "margin_so_call": 50.0,
        "margin_so_so": 30.0,
        "margin_initial": 0.0,
        "margin_maintenance": 0.0,
        "assets": 0.0,
        "liabilities": 0.0,
        "commission_blocked": 0.0,
        "name": "Demo Trader",
        "server": "Sim-Demo",
        "currency": "USD",
        "company": "Simulated Broker Ltd",
    }
    data.update(overrides)
    return structs.struct_from_dict("AccountInfo", data)  # type: ignore[return-value]


def terminal_info(**overrides: Any) -> structs.TerminalInfo:
    data: dict[str, Any] = {
        "community_account": False,
        "community_connection": False,
        "connected": True,
        "dlls_allowed": False,
        "trade_allowed": True,
        "tradeapi_disabled": False,
        "email_enabled": False,
        "ftp_enabled": False,
        "notifications_enabled": False,
        "mqid": False,
        "build": 4755,
        "maxbars": 100000,
        "codepage": 0,
        "ping_last": 77881,
        "community_balance": 0.0,
        "retransmission": 0.0,
        "company": "Simulated Broker Ltd",
        "name": "MetaTrader 5",
        "language": "English",
        "path": "C:\\MT5",
        "data_path": "C:\\MT5",
        "commondata_path": "C:\\Common",
    }
    data.update(overrides)
    return structs.struct_from_dict("TerminalInfo", data)  # type: ignore[return-value]


def symbol_info(name: str = "EURUSD", **overrides: Any) -> structs.SymbolInfo:
    data: dict[str, Any] = dict.fromkeys(structs.field_names(structs.SymbolInfo), 0)
    for key in ("currency_base", "currency_profit", "currency_margin", "bank", "description", "exchange"):
        data[key] = ""
    for key in ("formula", "isin", "page", "path", "category", "basis"):
        data[key] = ""
    data.update(
        name=name,
        description="Euro vs US Dollar",
        digits=5,
        point=1e-05,
        trade_tick_size=1e-05,
        trade_tick_value=1.0,
        trade_contract_size=100000.0,
        volume_min=0.01,
        volume_max=100.0,
        volume_step=0.01,
        trade_mode=4,
        trade_exemode=1,
        filling_mode=1,
        currency_base="EUR",
        currency_profit="USD",
        currency_margin="EUR",
        spread=10,
        select=True,
        visible=True,
    )
    data.update(overrides)
    return structs.struct_from_dict("SymbolInfo", data)  # type: ignore[return-value]


def tick(
    time: int = SERVER_EPOCH, bid: float = 1.085, ask: float = 1.0851, msc_extra: int = 250
) -> structs.Tick:
    return structs.Tick(time, bid, ask, 0.0, 0, time * 1000 + msc_extra, 6, 0.0)


def position(**overrides: Any) -> structs.TradePosition:
    data: dict[str, Any] = {
        "ticket": 1001,
        "time": SERVER_EPOCH,
        "time_msc": SERVER_EPOCH * 1000 + 123,
        "time_update": SERVER_EPOCH,
        "time_update_msc": SERVER_EPOCH * 1000 + 123,
        "type": 0,
        "magic": 990001,
        "identifier": 1001,
        "reason": 3,
        "volume": 0.30000000000000004,
        "price_open": 1.0851000000000002,
        "sl": 0.0,
        "tp": 1.0951,
        "price_current": 1.08498,
        "swap": -0.1234,
        "profit": -3.6,
        "symbol": "EURUSD",
        "comment": "bt-1",
        "external_id": "",
    }
    data.update(overrides)
    return structs.struct_from_dict("TradePosition", data)  # type: ignore[return-value]


def deal(**overrides: Any) -> structs.TradeDeal:
    data: dict[str, Any] = {
        "ticket": 2001,
        "order": 1001,
        "time": SERVER_EPOCH,
        "time_msc": SERVER_EPOCH * 1000 + 500,
        "type": 0,
        "entry": 0,
        "magic": 990001,
        "position_id": 1001,
        "reason": 3,
        "volume": 0.3,
        "price": 1.08510000001,
        "commission": -2.1,
        "swap": 0.0,
        "profit": 0.0,
        "fee": 0.0,
        "symbol": "EURUSD",
        "comment": "",
        "external_id": "",
    }
    data.update(overrides)
    return structs.struct_from_dict("TradeDeal", data)  # type: ignore[return-value]


def trade_request(**overrides: Any) -> structs.TradeRequest:
    data: dict[str, Any] = dict.fromkeys(structs.field_names(structs.TradeRequest), 0)
    data.update(symbol="EURUSD", comment="")
    data.update(overrides)
    return structs.struct_from_dict("TradeRequest", data)  # type: ignore[return-value]


def send_result(retcode: int = 10009, **overrides: Any) -> structs.OrderSendResult:
    data: dict[str, Any] = {
        "retcode": retcode,
        "deal": 2002,
        "order": 1002,
        "volume": 0.3,
        "price": 1.08498000001,
        "bid": 1.08498,
        "ask": 1.08508,
        "comment": "Request executed",
        "request_id": 7,
        "retcode_external": 0,
        "request": trade_request(),
    }
    data.update(overrides)
    return structs.struct_from_dict("OrderSendResult", data)  # type: ignore[return-value]


class ScriptedApi:
    """Answers each function from `answers[name]` (a value, or a callable taking the call's arguments).

    `fail(name, code, description)` makes the next call of `name` return None (False for bool functions) with that
    last_error; `explode(name)` makes it raise SystemError. Every call is recorded in `calls`.
    """

    BOOL_FUNCTIONS = frozenset({"initialize", "login", "symbol_select"})

    def __init__(self, **answers: Any) -> None:
        self.answers: dict[str, Any] = {
            "initialize": True,
            "login": True,
            "shutdown": True,
            "account_info": account_info(),
            "terminal_info": terminal_info(),
            "symbol_info": lambda name: symbol_info(name) if name in ("EURUSD", "USDJPY") else None,
            "symbol_info_tick": lambda name: tick() if name in ("EURUSD", "USDJPY") else None,
            "symbol_select": True,
            "positions_get": (),
            "history_deals_get": (),
            "order_send": send_result(),
            "order_check": None,
        }
        self.answers.update(answers)
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.error: tuple[int, str] = (1, "Success")
        self._failures: dict[str, list[tuple[int, str]]] = {}
        self._explosions: dict[str, tuple[int, str]] = {}

    def fail(self, name: str, code: int, description: str = "", times: int = 1) -> None:
        self._failures.setdefault(name, []).extend([(code, description)] * times)

    def explode(self, name: str, code: int = 1, description: str = "Success") -> None:
        self._explosions[name] = (code, description)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def last_error(self) -> tuple[int, str]:
        return self.error

    def _answer(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, args, kwargs))
        if name in self._explosions:
            self.error = self._explosions.pop(name)
            raise SystemError(f"<built-in function {name}> returned NULL without setting an exception")
        pending = self._failures.get(name)
        if pending:
            self.error = pending.pop(0)
            return False if name in self.BOOL_FUNCTIONS else None
        answer = self.answers.get(name)
        result = answer(*args, **kwargs) if callable(answer) else answer
        self.error = (1, "Success")
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._answer(name, *args, **kwargs)


@contextmanager
def running_bridge(backend: Any, secret: str, **options: Any) -> Iterator[BridgeServer]:
    """A real bridge server on 127.0.0.1 (a free port, see `.url`), serving from a thread until the block ends."""
    server = make_server(backend=backend, secret=secret, port=0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
