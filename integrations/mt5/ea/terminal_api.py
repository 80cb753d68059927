"""EaTerminalApi: the MetaTrader5 function API answered from an account's latest EA push.

Reads come from the latest accepted push. A push older than the account's freshness limit, a push from a terminal that
is not connected to its trade server, or a state left unknown by a close command that got no answer, is a failed read
(None with an IPC error, as a dead terminal gives), never "no positions". order_send queues a close command for the
EA and waits for its result until the command's deadline; no answer by then is an unknown outcome (None with a
timeout), which the close service resolves from a later push before it sends anything again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, get_type_hints

from integrations.mt5 import constants as c
from integrations.mt5 import structs
from integrations.mt5.ea.store import EaStore, StoredPush

COMMAND_DEADLINE_SECONDS = 20.0
RESULT_POLL_SECONDS = 0.2


def _filled(cls: type, known: dict[str, Any]) -> Any:
    """A struct with the fields the EA sends; fields the protocol does not carry are zero of their type."""
    hints = get_type_hints(cls)
    zero = {int: 0, float: 0.0, bool: False, str: ""}
    values = {name: known.get(name, zero.get(hints[name], 0)) for name in structs.field_names(cls)}
    return cls.from_dict({k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()})  # type: ignore[attr-defined]


class EaTerminalApi:
    def __init__(
        self,
        *,
        login: int,
        server: str,
        store: EaStore,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        command_deadline_seconds: float = COMMAND_DEADLINE_SECONDS,
    ) -> None:
        self._login, self._server, self._store = login, server, store
        self._clock, self._sleep = clock, sleep
        self._deadline = command_deadline_seconds
        self._error: tuple[int, str] = (c.RES_S_OK, "Success")

    # ------------------------------------------------------------------ module-level conventions
    def last_error(self) -> tuple[int, str]:
        return self._error

    def _fail(self, code: int, message: str) -> None:
        self._error = (code, message)
        return None

    def _ok(self, value: Any) -> Any:
        self._error = (c.RES_S_OK, "Success")
        return value

    def _push(self, *, for_positions: bool = False) -> StoredPush | None:
        """The latest push when it may be trusted, else None with the reason in last_error."""
        push = self._store.latest_push(login=self._login, server=self._server)
        if push is None:
            return self._fail(c.RES_E_INTERNAL_FAIL_CONNECT, "EA: no push received for this account yet")
        age = self._clock() - push.received_at
        if age > push.fresh_for_seconds:
            return self._fail(
                c.RES_E_INTERNAL_FAIL_CONNECT,
                f"EA: the latest push is {age:.0f} s old (limit {push.fresh_for_seconds:.0f} s)",
            )
        if not push.data["terminal"]["connected"]:
            return self._fail(
                c.RES_E_INTERNAL_FAIL_CONNECT, "EA: the terminal is not connected to its trade server"
            )
        if for_positions:
            unanswered = self._store.unanswered_until(login=self._login, server=self._server)
            if unanswered is not None and push.received_at <= unanswered:
                # Generic fail, not a link error: the link is fine, only this state is unknown for a few seconds,
                # and it must not open the circuit (which would hold back the retry for its whole reset time).
                return self._fail(
                    c.RES_E_FAIL, "EA: a close command got no answer; waiting for a push after its deadline"
                )
        return push

    # ------------------------------------------------------------------ lifecycle
    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._ok(True)) if self._push() is not None else False

    def login(self, login: int, password: str = "", server: str = "", timeout: int = 60_000) -> bool:
        push = self._push()
        if push is None:
            return False
        if int(push.data["login"]) != int(login) or (server and push.data["server"] != server):
            self._fail(c.RES_E_AUTH_FAILED, "EA: the pushing terminal is logged in to another account")
            return False
        return bool(self._ok(True))

    def shutdown(self) -> bool:
        return bool(self._ok(True))

    def version(self) -> tuple[int, int, str] | None:
        push = self._push()
        return None if push is None else self._ok((500, int(push.data["terminal"]["build"]), "EA"))

    # ------------------------------------------------------------------ reads
    def account_info(self) -> Any:
        push = self._push()
        if push is None:
            return None
        account = push.data["account"]
        return self._ok(
            _filled(
                structs.AccountInfo, {**account, "login": push.data["login"], "server": push.data["server"]}
            )
        )

    def terminal_info(self) -> Any:
        push = self._push()
        if push is None:
            return None
        terminal = push.data["terminal"]
        return self._ok(
            _filled(
                structs.TerminalInfo,
                {**terminal, "company": push.data["account"]["company"], "name": "MetaTrader 5 (EA)"},
            )
        )

    def positions_total(self) -> int | None:
        push = self._push(for_positions=True)
        return None if push is None else self._ok(len(push.data["positions"]))

    def positions_get(
        self, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> Any:
        push = self._push(for_positions=True)
        if push is None:
            return None
        rows = push.data["positions"]
        if ticket is not None:
            rows = [row for row in rows if int(row["ticket"]) == int(ticket)]
        elif symbol is not None:
            rows = [row for row in rows if row["symbol"] == symbol]
        return self._ok(tuple(_position(row) for row in rows))

    def history_deals_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        *,
        position: int | None = None,
        ticket: int | None = None,
        group: str | None = None,
    ) -> Any:
        if self._push() is None:
            return None
        if position is not None:
            rows = self._store.deals_for_position(
                login=self._login, server=self._server, position_id=int(position)
            )
        else:
            rows = self._store.deals(
                login=self._login,
                server=self._server,
                since_msc=int(_epoch(date_from) * 1000),
                until_msc=int(_epoch(date_to) * 1000),
            )
        return self._ok(tuple(_deal(row) for row in rows))

    def symbol_info(self, symbol: str) -> Any:
        push = self._push()
        if push is None:
            return None
        spec = push.data["symbols"].get(symbol)
        if spec is None:
            return self._fail(c.RES_E_NOT_FOUND, f"EA: no specification pushed for {symbol}")
        tick = push.data["ticks"].get(symbol, {})
        return self._ok(
            _filled(
                structs.SymbolInfo,
                {
                    **spec,
                    "name": symbol,
                    "select": True,
                    "visible": True,
                    "bid": tick.get("bid", 0),
                    "ask": tick.get("ask", 0),
                    "time": int(tick.get("time_msc", 0)) // 1000,
                },
            )
        )

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        push = self._push()
        return push is not None and bool(self._ok(symbol in push.data["symbols"]))

    def symbol_info_tick(self, symbol: str) -> Any:
        push = self._push()
        if push is None:
            return None
        tick = push.data["ticks"].get(symbol)
        if tick is None:
            return self._fail(c.RES_E_NOT_FOUND, f"EA: no tick pushed for {symbol}")
        time_msc = int(tick["time_msc"])
        return self._ok(
            _filled(
                structs.Tick,
                {"time": time_msc // 1000, "time_msc": time_msc, "bid": tick["bid"], "ask": tick["ask"]},
            )
        )

    def _unsupported(self, name: str) -> None:
        return self._fail(c.RES_E_UNSUPPORTED, f"EA: {name} is not part of the push protocol")

    def copy_rates_from_pos(self, *args: Any, **kwargs: Any) -> None:
        return self._unsupported("copy_rates_from_pos")

    def order_calc_margin(self, *args: Any, **kwargs: Any) -> None:
        return self._unsupported("order_calc_margin")

    def order_calc_profit(self, *args: Any, **kwargs: Any) -> None:
        return self._unsupported("order_calc_profit")

    def order_check(self, request: dict[str, Any]) -> None:
        return self._unsupported("order_check")

    # ------------------------------------------------------------------ trading
    def order_send(self, request: dict[str, Any]) -> Any:
        """Only closes: a DEAL request naming its position. Queued for the EA, then awaited until the deadline."""
        if int(request.get("action", 0)) != c.TRADE_ACTION_DEAL or not int(request.get("position", 0) or 0):
            return self._fail(
                c.RES_E_INVALID_PARAMS, "EA: only closing a position (DEAL with position=) is supported"
            )
        if self._push() is None:
            return None
        payload = {
            key: (float(value) if isinstance(value, Decimal) else value) for key, value in request.items()
        }
        command_id = self._store.command_enqueue(
            login=self._login, server=self._server, request=payload, deadline_seconds=self._deadline
        )
        deadline = self._clock() + self._deadline
        while True:
            result = self._store.command_result(command_id=command_id)
            if result is None and self._clock() >= deadline:
                result = self._store.command_expire(command_id=command_id)
                if result is None:
                    return self._fail(
                        c.RES_E_INTERNAL_FAIL_TIMEOUT, "EA: no result before the command's deadline"
                    )
            if result is not None:
                return self._ok(_send_result(result, payload))
            self._sleep(RESULT_POLL_SECONDS)


def _epoch(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def _position(row: dict[str, Any]) -> Any:
    time_msc = int(row["time_msc"])
    return _filled(
        structs.TradePosition,
        {**row, "time": time_msc // 1000, "time_update": time_msc // 1000, "time_update_msc": time_msc},
    )


def _deal(row: dict[str, Any]) -> Any:
    return _filled(structs.TradeDeal, {**row, "time": int(row["time_msc"]) // 1000})


def _send_result(result: dict[str, Any], request: dict[str, Any]) -> Any:
    echoed = _filled(structs.TradeRequest, request)
    return _filled(structs.OrderSendResult, {**result, "request": echoed})
