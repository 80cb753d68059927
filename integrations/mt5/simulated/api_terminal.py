"""The MT5 API, part 1: lifecycle, account/terminal info, positions, orders and history."""

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from integrations.mt5.simulated import views
from integrations.mt5.simulated.api_market import MarketApiMixin
from integrations.mt5.simulated.api_support import (
    api_call,
    group_match,
    keyword,
    no_arguments,
    no_positional,
    only_keywords,
    positional,
)
from integrations.mt5.simulated.checks import to_epoch
from integrations.mt5.simulated.errors import AUTH_FAILED, INVALID_ARGUMENTS, ApiError, invalid_argument
from integrations.mt5.structs import TradeDeal, TradeOrder, TradePosition

if TYPE_CHECKING:
    from integrations.mt5.simulated.engine import Engine

_INIT_KEYWORDS = ("path", "login", "password", "server", "timeout", "portable")
_LOGIN_KEYWORDS = ("login", "password", "server", "timeout")
_HISTORY_KEYWORDS = ("group", "ticket", "position")


class TerminalApiMixin(MarketApiMixin):
    _engine: "Engine"
    _ipc: bool
    _investor: bool
    _account_when_disconnected: Any = None
    _state: views.TerminalState

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def _authorise(self, login: Any, password: Any, server: Any) -> None:
        acct = self._engine.account
        if login is None:
            return
        if login != acct.login or (server is not None and server != acct.server):
            raise ApiError(AUTH_FAILED)
        if (
            password is not None
            and acct.password is not None
            and password not in (acct.password, acct.investor_password)
        ):
            raise ApiError(AUTH_FAILED)
        self._investor = password is not None and password == acct.investor_password

    @api_call("initialize", failure=False, needs_connection=False)
    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        """initialize([path], login=, password=, server=, timeout=60000, portable=False)"""
        only_keywords(kwargs, _INIT_KEYWORDS)
        if len(args) > 1 or (args and "path" in kwargs):
            raise ApiError(INVALID_ARGUMENTS)
        if args and not isinstance(args[0], str):
            raise ApiError((INVALID_ARGUMENTS[0], "Invalid 1st unnamed argument"))
        keyword(kwargs, "path", str)
        login = keyword(kwargs, "login", int)
        password = keyword(kwargs, "password", str)
        server = keyword(kwargs, "server", str)
        keyword(kwargs, "timeout", int)
        keyword(kwargs, "portable", bool)
        try:
            self._authorise(login, password, server)
        except ApiError:
            self._ipc = False
            raise
        self._ipc = True
        return True

    @api_call("login", failure=False)
    def login(self, *args: Any, **kwargs: Any) -> bool:
        """login(login, password=, server=, timeout=60000); `login` must be an int."""
        only_keywords(kwargs, _LOGIN_KEYWORDS)
        if len(args) > 1 or (args and "login" in kwargs) or not (args or "login" in kwargs):
            raise ApiError(INVALID_ARGUMENTS)
        login = args[0] if args else kwargs["login"]
        if not isinstance(login, int) or isinstance(login, bool):
            raise ApiError(invalid_argument("login"))
        password = keyword(kwargs, "password", str)
        server = keyword(kwargs, "server", str)
        keyword(kwargs, "timeout", int)
        self._authorise(login, password, server)
        return True

    @api_call("shutdown", needs_connection=False)
    def shutdown(self) -> bool:
        self._ipc = False
        return True

    @api_call("version")
    def version(self, *args: Any, **kwargs: Any) -> tuple[int, int, str]:
        no_arguments(args, kwargs)
        return (500, self._state.build, self._state.build_date)

    # --- account and terminal ------------------------------------------------------------------------------------
    @api_call("account_info")
    def account_info(self, *args: Any, **kwargs: Any) -> Any:
        no_arguments(args, kwargs)
        if not self._state.connected and self._account_when_disconnected is not None:
            return self._account_when_disconnected  # off the trade server: the last values it had
        return views.account_info(self._engine, read_only=self._investor)

    @api_call("terminal_info")
    def terminal_info(self, *args: Any, **kwargs: Any) -> Any:
        no_arguments(args, kwargs)
        return views.terminal_info(self._state)

    # --- positions and active orders -----------------------------------------------------------------------------
    def _filtered(self, items: Iterable[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        no_positional(args)
        only_keywords(kwargs, ("symbol", "group", "ticket"))
        symbol = keyword(kwargs, "symbol", str)
        group = keyword(kwargs, "group", str)
        ticket = keyword(kwargs, "ticket", int)
        items = list(items)
        if symbol is not None:
            return [item for item in items if item.symbol == symbol]
        if group is not None:
            return [item for item in items if group_match(item.symbol, group)]
        if ticket is not None:
            return [item for item in items if item.ticket == ticket]
        return items

    @api_call("positions_total")
    def positions_total(self, *args: Any, **kwargs: Any) -> int:
        no_arguments(args, kwargs)
        return len(self._engine.account.positions)

    @api_call("positions_get")
    def positions_get(self, *args: Any, **kwargs: Any) -> tuple[TradePosition, ...]:
        """positions_get([symbol=], [group=], [ticket=]); named arguments only. Off the trade server: ()."""
        matched = self._filtered(self._engine.account.positions.values(), args, kwargs)
        if not self._state.connected:
            return ()
        return tuple(views.position(self._engine, p) for p in sorted(matched, key=lambda p: p.ticket))

    @api_call("orders_total")
    def orders_total(self, *args: Any, **kwargs: Any) -> int:
        no_arguments(args, kwargs)
        return len(self._engine.account.orders)

    @api_call("orders_get")
    def orders_get(self, *args: Any, **kwargs: Any) -> tuple[TradeOrder, ...]:
        matched = self._filtered(self._engine.account.orders.values(), args, kwargs)
        return tuple(views.order(self._engine, o) for o in sorted(matched, key=lambda o: o.ticket))

    # --- history -------------------------------------------------------------------------------------------------
    def _history(
        self,
        records: list[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        ticket_of: Callable[[Any], int],
        time_of: Callable[[Any], int],
    ) -> list[Any]:
        only_keywords(kwargs, _HISTORY_KEYWORDS)
        group = keyword(kwargs, "group", str)
        ticket = keyword(kwargs, "ticket", int)
        position = keyword(kwargs, "position", int)
        if ticket is not None:
            return [r for r in records if ticket_of(r) == ticket]
        if position is not None:
            return [r for r in records if r.position_id == position]
        if not args:
            raise ApiError(INVALID_ARGUMENTS)
        date_from, date_to = positional(args, {}, ("date", "date"), required=2)
        start, end = to_epoch(date_from, "date_from"), to_epoch(date_to, "date_to")
        chosen = [r for r in records if start <= time_of(r) // 1000 <= end]
        if group is not None:
            chosen = [r for r in chosen if group_match(r.symbol, group)]
        return chosen

    def _history_total(
        self, records: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any], time_of: Any
    ) -> int:
        date_from, date_to = positional(args, kwargs, ("date", "date"), required=2)
        start, end = to_epoch(date_from, "date_from"), to_epoch(date_to, "date_to")
        return sum(1 for r in records if start <= time_of(r) // 1000 <= end)

    @api_call("history_orders_total")
    def history_orders_total(self, *args: Any, **kwargs: Any) -> int:
        orders = self._engine.account.history_orders
        return self._history_total(orders, args, kwargs, lambda o: o.time_done_msc or o.time_setup_msc)

    @api_call("history_orders_get")
    def history_orders_get(self, *args: Any, **kwargs: Any) -> tuple[TradeOrder, ...]:
        """history_orders_get(date_from, date_to, [group=]) | (ticket=ORDER) | (position=POSITION_ID)"""
        orders = self._history(
            self._engine.account.history_orders,
            args,
            kwargs,
            ticket_of=lambda o: o.ticket,
            time_of=lambda o: o.time_done_msc or o.time_setup_msc,
        )
        return tuple(views.order(self._engine, o) for o in orders)

    @api_call("history_deals_total")
    def history_deals_total(self, *args: Any, **kwargs: Any) -> int:
        return self._history_total(self._engine.account.deals, args, kwargs, lambda d: d.time_msc)

    @api_call("history_deals_get")
    def history_deals_get(self, *args: Any, **kwargs: Any) -> tuple[TradeDeal, ...]:
        """history_deals_get(date_from, date_to, [group=]) | (ticket=ORDER_TICKET) | (position=POSITION_ID).

        `ticket=` filters by the deal's *order* ticket, as in the real module."""
        deals = self._history(
            self._engine.account.deals,
            args,
            kwargs,
            ticket_of=lambda d: d.order,
            time_of=lambda d: d.time_msc,
        )
        return tuple(views.deal(d) for d in deals)
