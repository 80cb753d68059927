"""The MT5 API, part 2: symbols, ticks, bars, depth of market, margin/profit calculation, order_check/order_send."""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from integrations.mt5 import constants as c
from integrations.mt5.simulated import bars, views
from integrations.mt5.simulated.api_support import api_call, keyword, no_arguments, only_keywords, positional
from integrations.mt5.simulated.checks import parse_request, to_epoch
from integrations.mt5.simulated.errors import (
    API_TRADING_DISABLED,
    CALL_FAILED,
    INVALID_PARAMS,
    ApiError,
    retcode_comment,
)
from integrations.mt5.simulated.money import ConversionError, round_money
from integrations.mt5.simulated.results import Outcome
from integrations.mt5.simulated.trading import evaluate
from integrations.mt5.structs import (
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    Rate,
    SymbolInfo,
    Tick,
    TradeRequest,
)

if TYPE_CHECKING:
    from integrations.mt5.simulated.engine import Engine
    from integrations.mt5.simulated.faults import Fault
    from integrations.mt5.simulated.market import Feed, Market

_SUCCESSFUL = (c.TRADE_RETCODE_DONE, c.TRADE_RETCODE_PLACED, c.TRADE_RETCODE_DONE_PARTIAL)
_MARGIN_ACTIONS = tuple(range(c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL_STOP_LIMIT + 1))


class MarketApiMixin:
    _engine: "Engine"
    _market: "Market"
    _selected: set[str]
    _state: views.TerminalState
    _investor: bool
    _active_fault: "Fault | None"
    _request_id: int

    def _feed(self, symbol: Any) -> "Feed":
        if symbol not in self._market:
            raise ApiError(CALL_FAILED)
        feed = self._market.feed(symbol)
        self._engine.refresh([symbol])
        return feed

    # --- symbols and ticks ---------------------------------------------------------------------------------------
    @api_call("symbols_total")
    def symbols_total(self, *args: Any, **kwargs: Any) -> int:
        no_arguments(args, kwargs)
        return len(self._market.feeds)

    @api_call("symbols_get")
    def symbols_get(self, *args: Any, **kwargs: Any) -> tuple[SymbolInfo, ...]:
        """symbols_get([group="*USD*,!EUR*"])"""
        from integrations.mt5.simulated.api_support import group_match, no_positional

        no_positional(args)
        only_keywords(kwargs, ("group",))
        group = keyword(kwargs, "group", str)
        names = [n for n in self._market.feeds if group is None or group_match(n, group)]
        self._engine.refresh(names)
        return tuple(
            views.symbol_info(self._engine, self._market.feed(n), selected=n in self._selected) for n in names
        )

    @api_call("symbol_info")
    def symbol_info(self, *args: Any, **kwargs: Any) -> SymbolInfo:
        (symbol,) = positional(args, kwargs, (str,), required=1)
        feed = self._feed(symbol)
        return views.symbol_info(self._engine, feed, selected=symbol in self._selected)

    @api_call("symbol_info_tick")
    def symbol_info_tick(self, *args: Any, **kwargs: Any) -> Tick:
        (symbol,) = positional(args, kwargs, (str,), required=1)
        return views.tick(self._feed(symbol))

    @api_call("symbol_select", failure=False)
    def symbol_select(self, *args: Any, **kwargs: Any) -> bool:
        """symbol_select(symbol, [enable=True]); removal fails while positions/orders use the symbol."""
        enable = kwargs.pop("enable", True)
        symbol, *rest = positional(args, kwargs, (str, bool), required=1)
        enable = rest[0] if rest else enable
        if not isinstance(enable, bool):
            raise ApiError((INVALID_PARAMS[0], "Invalid 2nd unnamed argument"))
        self._feed(symbol)
        if enable:
            self._selected.add(symbol)
            return True
        acct = self._engine.account
        if any(p.symbol == symbol for p in acct.positions.values()) or any(
            o.symbol == symbol for o in acct.orders.values()
        ):
            raise ApiError(CALL_FAILED)
        self._selected.discard(symbol)
        return True

    # --- bars ------------------------------------------------------------------------------------------------------
    def _bars_source(self, symbol: str, timeframe: int) -> "Feed":
        feed = self._feed(symbol)
        if timeframe not in bars.TIMEFRAMES:
            raise ApiError(INVALID_PARAMS)
        return feed

    @api_call("copy_rates_from_pos")
    def copy_rates_from_pos(self, *args: Any, **kwargs: Any) -> tuple[Rate, ...]:
        """copy_rates_from_pos(symbol, timeframe, start_pos, count): tuple of Rate, oldest first (numpy: see structs)."""
        symbol, timeframe, start_pos, count = positional(args, kwargs, (str, int, int, int), required=4)
        feed = self._bars_source(symbol, timeframe)
        if start_pos < 0 or count <= 0:
            raise ApiError(INVALID_PARAMS)
        rates = bars.rates_from_pos(feed.spec, reversed(feed.bars), timeframe, start_pos, count)
        if not rates:
            raise ApiError(INVALID_PARAMS)
        return rates

    @api_call("copy_rates_from")
    def copy_rates_from(self, *args: Any, **kwargs: Any) -> tuple[Rate, ...]:
        symbol, timeframe, date_from, count = positional(args, kwargs, (str, int, "date", int), required=4)
        feed = self._bars_source(symbol, timeframe)
        if count <= 0:
            raise ApiError(INVALID_PARAMS)
        start = to_epoch(date_from, "date_from")
        return bars.rates_range(feed.spec, reversed(feed.bars), timeframe, start, None, count)

    @api_call("copy_rates_range")
    def copy_rates_range(self, *args: Any, **kwargs: Any) -> tuple[Rate, ...]:
        symbol, timeframe, date_from, date_to = positional(
            args, kwargs, (str, int, "date", "date"), required=4
        )
        feed = self._bars_source(symbol, timeframe)
        start, end = to_epoch(date_from, "date_from"), to_epoch(date_to, "date_to")
        return bars.rates_range(feed.spec, reversed(feed.bars), timeframe, start, end, None)

    @api_call("copy_ticks_from")
    def copy_ticks_from(self, *args: Any, **kwargs: Any) -> None:
        """Not simulated (tick history is not kept): None with RES_E_UNSUPPORTED."""
        raise ApiError((c.RES_E_UNSUPPORTED, "Terminal: Unsupported function"))

    @api_call("copy_ticks_range")
    def copy_ticks_range(self, *args: Any, **kwargs: Any) -> None:
        raise ApiError((c.RES_E_UNSUPPORTED, "Terminal: Unsupported function"))

    # --- depth of market (one level each side, built from the quote) ---------------------------------------------
    @api_call("market_book_add", failure=False)
    def market_book_add(self, *args: Any, **kwargs: Any) -> bool:
        (symbol,) = positional(args, kwargs, (str,), required=1)
        self._feed(symbol)
        return True

    @api_call("market_book_release", failure=False)
    def market_book_release(self, *args: Any, **kwargs: Any) -> bool:
        (symbol,) = positional(args, kwargs, (str,), required=1)
        self._feed(symbol)
        return True

    @api_call("market_book_get")
    def market_book_get(self, *args: Any, **kwargs: Any) -> tuple[BookInfo, ...]:
        (symbol,) = positional(args, kwargs, (str,), required=1)
        tick = views.tick(self._feed(symbol))
        return (BookInfo(c.BOOK_TYPE_SELL, tick.ask, 10, 10.0), BookInfo(c.BOOK_TYPE_BUY, tick.bid, 10, 10.0))

    # --- calculations --------------------------------------------------------------------------------------------
    def _money(self, value: Decimal) -> float:
        return float(round_money(value, self._engine.account.currency))

    @api_call("order_calc_margin")
    def order_calc_margin(self, *args: Any, **kwargs: Any) -> float:
        """order_calc_margin(action, symbol, volume, price): positional only; account currency."""
        action, symbol, volume, price = positional(args, kwargs, (int, str, float, float), required=4)
        if action not in _MARGIN_ACTIONS or volume <= 0 or price <= 0:
            raise ApiError(INVALID_PARAMS)
        spec = self._feed(symbol).spec
        try:
            margin = self._engine.money.margin(
                spec, Decimal(repr(float(volume))), Decimal(repr(float(price))), self._engine.account.leverage
            )
        except ConversionError as error:
            raise ApiError(CALL_FAILED) from error
        return self._money(margin)

    @api_call("order_calc_profit")
    def order_calc_profit(self, *args: Any, **kwargs: Any) -> float:
        """order_calc_profit(action, symbol, volume, price_open, price_close): positional only; account currency."""
        action, symbol, volume, price_open, price_close = positional(
            args, kwargs, (int, str, float, float, float), required=5
        )
        if action not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL) or volume <= 0:
            raise ApiError(INVALID_PARAMS)
        spec = self._feed(symbol).spec
        try:
            profit = self._engine.money.profit(
                spec,
                action == c.ORDER_TYPE_BUY,
                Decimal(repr(float(volume))),
                Decimal(repr(float(price_open))),
                Decimal(repr(float(price_close))),
            )
        except ConversionError as error:
            raise ApiError(CALL_FAILED) from error
        return self._money(profit)

    # --- trading -------------------------------------------------------------------------------------------------
    def _gate(self) -> int | None:
        """Terminal/account switches that stop a trade before it reaches the server."""
        if self._state.tradeapi_disabled:
            raise ApiError(API_TRADING_DISABLED)
        acct = self._engine.account
        if not self._state.trade_allowed:
            return c.TRADE_RETCODE_CLIENT_DISABLES_AT
        if not self._state.connected:
            return c.TRADE_RETCODE_CONNECTION
        if self._investor or not acct.trade_allowed:
            return c.TRADE_RETCODE_TRADE_DISABLED
        if not acct.trade_expert:
            return c.TRADE_RETCODE_SERVER_DISABLES_AT
        return None

    def _run(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, execute: bool
    ) -> tuple[TradeRequest, Outcome]:
        (request,) = positional(args, kwargs, (object,), required=1)
        req = parse_request(request)
        gate = self._gate()
        fault = self._active_fault
        if gate is not None:
            return req, Outcome(gate, retcode_comment(gate))
        if fault is not None and fault.retcode is not None and not fault.executed:
            return req, Outcome(fault.retcode, fault.comment or retcode_comment(fault.retcode))
        if req.symbol in self._market:
            self._selected.add(req.symbol)
            self._engine.refresh(
                [req.symbol, *self._engine.money.conversion_symbols(self._market.spec(req.symbol))]
            )
        outcome = evaluate(self._engine, req, execute=execute)
        if fault is not None and fault.retcode is not None:
            outcome = Outcome(fault.retcode, fault.comment or retcode_comment(fault.retcode))
        return req, outcome

    @api_call("order_check")
    def order_check(self, *args: Any, **kwargs: Any) -> OrderCheckResult:
        """order_check(request): retcode 0 / 'Done' and the account as it would be after the trade."""
        req, outcome = self._run(args, kwargs, execute=False)
        after = outcome.after
        if after is None:
            return OrderCheckResult(outcome.retcode, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, outcome.comment, req)
        return OrderCheckResult(
            outcome.retcode,
            float(after.balance),
            float(after.equity),
            float(after.profit),
            float(after.margin),
            float(after.margin_free),
            float(after.margin_level),
            outcome.comment,
            req,
        )

    @api_call("order_send")
    def order_send(self, *args: Any, **kwargs: Any) -> OrderSendResult:
        """order_send(request): 10009 'Request executed' (market), 10008 (pending), or a rejection with zeroed
        fields; None (+ last_error) on local errors."""
        req, outcome = self._run(args, kwargs, execute=True)
        request_id = 0
        if outcome.retcode in _SUCCESSFUL or outcome.retcode == c.TRADE_RETCODE_REQUOTE:
            self._request_id += 1
            request_id = self._request_id
        return OrderSendResult(
            outcome.retcode,
            outcome.deal,
            outcome.order,
            float(outcome.volume),
            float(outcome.price),
            float(outcome.bid),
            float(outcome.ask),
            outcome.comment,
            request_id,
            0,
            req,
        )
