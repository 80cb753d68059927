"""A Python Expert Advisor: what MT5Guard.mq5 does, function by function, driving any object with the MetaTrader5
function API (a simulated terminal, or a bridge client) and speaking exactly the protocol of protocol.py.

Used by the tests, by the gateway contract suite on the `ea` backend, and by `make run` (`run_ea_emulator`). The MQL5
EA mirrors these functions (same names in CamelCase): OnInit→start, OnTimer→on_timer, OnTradeTransaction→push,
BuildPush→build_push, SignedRequest→signed_request, PollCommands→poll_commands, ExecuteCommand→execute_command,
PostResult→post_result.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from integrations.mt5 import constants as c
from integrations.mt5.ea import protocol

logger = logging.getLogger(__name__)

EA_VERSION = "1.0.0"
HISTORY_DAYS_ON_START = 3


class Transport(Protocol):
    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]: ...


class UrllibTransport:
    """HTTP(S) to the server, as WebRequest does in the terminal."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - the configured server URL
            self.base_url + path, data=body if method == "POST" else None, method=method,
            headers={**headers, "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


@dataclass
class EaEmulator:
    api: Any  # the terminal (MetaTrader5 function API)
    transport: Transport
    key_id: str
    secret: str
    deals_cursor_msc: int = 0
    executed: list[int] = field(default_factory=list)  # command ids executed (order_send called once each)
    lose_next_result: bool = False  # tests: the result POST is "lost" on the way
    clock: Callable[[], float] = time.time

    # ------------------------------------------------------------------ OnInit
    def start(self) -> None:
        if not self.api.initialize():
            raise RuntimeError(f"terminal not initialised: {self.api.last_error()}")
        if self.deals_cursor_msc == 0:
            self.deals_cursor_msc = max(self._server_time_msc() - HISTORY_DAYS_ON_START * 86_400_000, 0)

    # ------------------------------------------------------------------ OnTimer
    def on_timer(self) -> None:
        """Push, then fetch and execute the commands waiting (the push's answer says whether there are any)."""
        answer = self.push()
        if answer.get("commands_pending"):
            self.poll_commands(wait=0)

    # ------------------------------------------------------------------ requests
    def signed_request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        """Sign method, path (without the query), timestamp, nonce and the body's hash; send."""
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(16)
        signature = protocol.sign(
            self.secret,
            method=method,
            path=path.split("?", 1)[0],
            timestamp=timestamp,
            nonce=nonce,
            body=body,
        )
        headers = {
            protocol.HEADER_KEY: self.key_id,
            protocol.HEADER_TIMESTAMP: timestamp,
            protocol.HEADER_NONCE: nonce,
            protocol.HEADER_SIGNATURE: signature,
        }
        return self.transport.request(method, path, body, headers)

    # ------------------------------------------------------------------ BuildPush
    def _server_time_msc(self) -> int:
        server_time = getattr(self.api, "sim_server_time", None)
        if server_time is not None:
            return int(server_time()) * 1000
        return int(time.time() * 1000)

    def build_push(self) -> dict[str, Any]:
        account = self.api.account_info()
        terminal = self.api.terminal_info()
        positions = self.api.positions_get() or ()
        now_msc = self._server_time_msc()
        deals = self.api.history_deals_get(self.deals_cursor_msc // 1000, now_msc // 1000 + 1) or ()
        symbols = sorted({p.symbol for p in positions} | {d.symbol for d in deals if d.symbol})
        return {
            "protocol": protocol.PROTOCOL_VERSION,
            "ea_version": EA_VERSION,
            "login": account.login,
            "server": account.server,
            "server_time": now_msc,
            "account": {name: getattr(account, name) for name in protocol.ACCOUNT_FIELDS},
            "terminal": {name: getattr(terminal, name) for name in protocol.TERMINAL_FIELDS},
            "positions": [{name: getattr(p, name) for name in protocol.POSITION_FIELDS} for p in positions],
            "deals": [{name: getattr(d, name) for name in protocol.DEAL_FIELDS} for d in deals][
                : protocol.MAX_DEALS
            ],
            "ticks": {s: self._tick(s) for s in symbols if self.api.symbol_info_tick(s) is not None},
            "symbols": {s: self._spec(s) for s in symbols if self.api.symbol_info(s) is not None},
        }

    def _tick(self, symbol: str) -> dict[str, Any]:
        tick, info = self.api.symbol_info_tick(symbol), self.api.symbol_info(symbol)
        return {
            "time_msc": tick.time_msc,
            "bid": tick.bid,
            "ask": tick.ask,
            "digits": info.digits,
            "point": info.point,
        }

    def _spec(self, symbol: str) -> dict[str, Any]:
        info = self.api.symbol_info(symbol)
        return {name: getattr(info, name) for name in protocol.SYMBOL_FIELDS}

    # ------------------------------------------------------------------ OnTradeTransaction / timer push
    def push(self) -> dict[str, Any]:
        payload = self.build_push()
        status, answer = self.signed_request("POST", protocol.PUSH_PATH, json.dumps(payload).encode())
        if status != 200:
            raise PushRefused(status, answer.get("message", ""))
        if payload["deals"]:
            self.deals_cursor_msc = max(d["time_msc"] for d in payload["deals"])
        return answer

    # ------------------------------------------------------------------ PollCommands / ExecuteCommand / PostResult
    def poll_commands(self, *, wait: float = 0) -> list[dict[str, Any]]:
        path = protocol.COMMANDS_PATH
        status, answer = self.signed_request("GET", path + (f"?wait={wait:g}" if wait else ""))
        if status != 200:
            raise PushRefused(status, answer.get("message", ""))
        commands = answer.get("commands", [])
        for command in commands:
            result = self.execute_command(command)
            if result is not None:
                self.post_result(command, result)
        return commands

    def execute_command(self, command: dict[str, Any]) -> dict[str, Any] | None:
        """Close the position with one order_send, unless the command's deadline has passed (then do nothing)."""
        if self.clock() * 1000 >= command["deadline"]:
            logger.warning("EA: command %s is past its deadline; not executed", command["id"])
            return None
        position = next(iter(self.api.positions_get(ticket=command["ticket"]) or ()), None)
        if position is None:  # already gone: tell the server, send nothing
            return {"retcode": c.TRADE_RETCODE_POSITION_CLOSED, "deal": 0, "order": 0, "volume": 0, "price": 0,
                    "comment": "Position doesn't exist"}  # fmt: skip
        tick = self.api.symbol_info_tick(position.symbol)
        closing_sell = position.type == c.POSITION_TYPE_BUY
        request = {
            "action": c.TRADE_ACTION_DEAL,
            "position": position.ticket,
            "symbol": position.symbol,
            "volume": float(command["volume"]) or position.volume,
            "type": c.ORDER_TYPE_SELL if closing_sell else c.ORDER_TYPE_BUY,
            "price": tick.bid if closing_sell else tick.ask,
            "deviation": command["deviation"],
            "magic": command["magic"],
            "comment": "MT5Guard close",
            "type_filling": self._filling(position.symbol),
        }
        self.executed.append(command["id"])
        result = self.api.order_send(request)
        if result is None:
            code, message = self.api.last_error()
            return {"retcode": c.TRADE_RETCODE_ERROR, "deal": 0, "order": 0, "volume": 0, "price": 0,
                    "comment": f"order_send failed: {code} {message}"[:255]}  # fmt: skip
        return {"retcode": result.retcode, "deal": result.deal, "order": result.order, "volume": result.volume,
                "price": result.price, "comment": result.comment}  # fmt: skip

    def _filling(self, symbol: str) -> int:
        flags = int(self.api.symbol_info(symbol).filling_mode)
        if flags & 1:  # SYMBOL_FILLING_FOK
            return c.ORDER_FILLING_FOK
        if flags & 2:  # SYMBOL_FILLING_IOC
            return c.ORDER_FILLING_IOC
        return c.ORDER_FILLING_RETURN

    def post_result(self, command: dict[str, Any], result: dict[str, Any]) -> None:
        if self.lose_next_result:
            self.lose_next_result = False
            logger.warning("EA: the result of command %s was lost on the way", command["id"])
            return
        path = protocol.RESULT_PATH_TEMPLATE.format(id=command["id"])
        status, answer = self.signed_request("POST", path, json.dumps(result).encode())
        if status != 200:
            raise PushRefused(status, answer.get("message", ""))


class PushRefused(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message
