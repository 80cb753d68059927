"""Pending orders (TRADE_ACTION_PENDING / MODIFY / REMOVE), their activation and expiry on ticks, and close-by.

Activation: BUY_LIMIT when ask <= price, SELL_LIMIT when bid >= price, BUY_STOP when ask >= price, SELL_STOP when
bid <= price; a STOP_LIMIT turns into the LIMIT order at `stoplimit` when its stop price is reached. A triggered
order fills at the market price; the position it opens has the order's ticket. Without enough free margin the
activation is rejected and the order cancelled (state REJECTED, as TRADE_RETCODE_REJECT_CANCEL describes).
"""

from decimal import Decimal
from typing import TYPE_CHECKING

from integrations.mt5 import constants as c
from integrations.mt5.simulated.account import Deal, Order, Position
from integrations.mt5.simulated.checks import check_stops, check_trade_mode, check_volume, price_decimal
from integrations.mt5.simulated.errors import TradeReject, retcode_comment
from integrations.mt5.simulated.money import round_money

if TYPE_CHECKING:
    from integrations.mt5.simulated.engine import Engine
    from integrations.mt5.simulated.results import Outcome
    from integrations.mt5.structs import TradeRequest

ZERO = Decimal(0)
DAY_S = 86_400
_BUYS = (c.ORDER_TYPE_BUY_LIMIT, c.ORDER_TYPE_BUY_STOP, c.ORDER_TYPE_BUY_STOP_LIMIT)
_PENDING_TYPES = (*_BUYS, c.ORDER_TYPE_SELL_LIMIT, c.ORDER_TYPE_SELL_STOP, c.ORDER_TYPE_SELL_STOP_LIMIT)
_STOP_LIMITS = (c.ORDER_TYPE_BUY_STOP_LIMIT, c.ORDER_TYPE_SELL_STOP_LIMIT)


def _outcome(retcode: int, **fields: object) -> "Outcome":
    from integrations.mt5.simulated.results import Outcome

    return Outcome(retcode, retcode_comment(retcode) if retcode else "Done", **fields)  # type: ignore[arg-type]


def _validate_price(engine: "Engine", order_type: int, symbol: str, price: Decimal) -> None:
    spec = engine.market.spec(symbol)
    bid, ask = engine.bid_ask(symbol)
    gap = spec.point * spec.stops_level
    valid = {
        c.ORDER_TYPE_BUY_LIMIT: price < ask and price <= ask - gap,
        c.ORDER_TYPE_SELL_LIMIT: price > bid and price >= bid + gap,
        c.ORDER_TYPE_BUY_STOP: price > ask and price >= ask + gap,
        c.ORDER_TYPE_SELL_STOP: price < bid and price <= bid - gap,
        c.ORDER_TYPE_BUY_STOP_LIMIT: price > ask and price >= ask + gap,
        c.ORDER_TYPE_SELL_STOP_LIMIT: price < bid and price <= bid - gap,
    }[order_type]
    if price <= 0 or not valid:
        raise TradeReject(c.TRADE_RETCODE_INVALID_PRICE)


def _expiration(engine: "Engine", type_time: int, expiration: int) -> int:
    now_s = engine.now_ms() // 1000
    if type_time == c.ORDER_TIME_GTC:
        return 0
    if type_time == c.ORDER_TIME_DAY:
        return (now_s // DAY_S + 1) * DAY_S
    if type_time == c.ORDER_TIME_SPECIFIED and expiration > now_s:
        return expiration
    if type_time == c.ORDER_TIME_SPECIFIED_DAY and expiration > now_s:
        return (expiration // DAY_S + 1) * DAY_S - 1
    raise TradeReject(c.TRADE_RETCODE_INVALID_EXPIRATION)


def _levels(engine: "Engine", req: "TradeRequest", order_type: int, symbol: str) -> tuple[Decimal, ...]:
    spec = engine.market.spec(symbol)
    price = price_decimal(spec, req.price, c.TRADE_RETCODE_INVALID_PRICE)
    stoplimit = price_decimal(spec, req.stoplimit, c.TRADE_RETCODE_INVALID_PRICE)
    sl = price_decimal(spec, req.sl, c.TRADE_RETCODE_INVALID_STOPS)
    tp = price_decimal(spec, req.tp, c.TRADE_RETCODE_INVALID_STOPS)
    _validate_price(engine, order_type, symbol, price)
    entry = stoplimit if order_type in _STOP_LIMITS else price
    if order_type in _STOP_LIMITS and stoplimit <= 0:
        raise TradeReject(c.TRADE_RETCODE_INVALID_PRICE)
    check_stops(spec, is_buy=order_type in _BUYS, reference=entry, sl=sl, tp=tp)
    return price, stoplimit, sl, tp


def place(engine: "Engine", req: "TradeRequest", execute: bool, reason: int) -> "Outcome":
    acct = engine.account
    spec = engine.request_spec(req.symbol)
    if req.type not in _PENDING_TYPES:
        raise TradeReject(c.TRADE_RETCODE_INVALID_ORDER)
    volume = check_volume(spec, req.volume)
    check_trade_mode(spec, is_buy=req.type in _BUYS, opening=True)
    engine.require_open(spec.name)
    price, stoplimit, sl, tp = _levels(engine, req, req.type, spec.name)
    expiration = _expiration(engine, req.type_time, req.expiration)
    if acct.limit_orders and len(acct.orders) >= acct.limit_orders:
        raise TradeReject(c.TRADE_RETCODE_LIMIT_ORDERS)
    if not execute:
        return _outcome(0, after=engine.snapshot())
    now = engine.now_ms()
    order = Order(
        acct.take_order_ticket(),
        spec.name,
        req.type,
        c.ORDER_STATE_PLACED,
        volume,
        volume,
        price,
        now,
        time_expiration=expiration,
        type_time=req.type_time,
        type_filling=req.type_filling,
        magic=req.magic,
        reason=reason,
        sl=sl,
        tp=tp,
        price_current=engine.bid_ask(spec.name)[0],
        price_stoplimit=stoplimit,
        comment=req.comment,
    )
    acct.orders[order.ticket] = order
    return _outcome(c.TRADE_RETCODE_PLACED, order=order.ticket, volume=volume, price=price)


def _active_order(engine: "Engine", ticket: int) -> Order:
    order = engine.account.orders.get(ticket)
    if order is None:
        raise TradeReject(c.TRADE_RETCODE_INVALID)
    return order


def modify(engine: "Engine", req: "TradeRequest", execute: bool, reason: int) -> "Outcome":
    order = _active_order(engine, req.order)
    engine.require_open(order.symbol)
    price, stoplimit, sl, tp = _levels(engine, req, order.type, order.symbol)
    expiration = _expiration(engine, req.type_time, req.expiration)
    current = (
        order.price_open,
        order.price_stoplimit,
        order.sl,
        order.tp,
        order.type_time,
        order.time_expiration,
    )
    if current == (price, stoplimit, sl, tp, req.type_time, expiration):
        raise TradeReject(c.TRADE_RETCODE_NO_CHANGES)
    if not execute:
        return _outcome(0, after=engine.snapshot())
    order.price_open, order.price_stoplimit, order.sl, order.tp = price, stoplimit, sl, tp
    order.type_time, order.time_expiration = req.type_time, expiration
    return _outcome(c.TRADE_RETCODE_DONE, order=order.ticket)


def _retire(engine: "Engine", order: Order, state: int, time_ms: int) -> None:
    engine.account.orders.pop(order.ticket, None)
    order.state, order.time_done_msc = state, time_ms
    engine.account.history_orders.append(order)


def remove(engine: "Engine", req: "TradeRequest", execute: bool, reason: int) -> "Outcome":
    order = _active_order(engine, req.order)
    if not execute:
        return _outcome(0, after=engine.snapshot())
    _retire(engine, order, c.ORDER_STATE_CANCELED, engine.now_ms())
    return _outcome(c.TRADE_RETCODE_DONE, order=order.ticket)


def process_pending(engine: "Engine", time_ms: int, changed: list[str]) -> None:
    """Expire and activate pending orders at a tick."""
    for order in list(engine.account.orders.values()):
        if order.time_expiration and time_ms // 1000 >= order.time_expiration:
            _retire(engine, order, c.ORDER_STATE_EXPIRED, time_ms)
            continue
        if order.symbol not in changed:
            continue
        bid, ask = engine.bid_ask(order.symbol)
        kind = order.type
        is_buy = kind in _BUYS
        market = ask if is_buy else bid
        if kind in (c.ORDER_TYPE_BUY_LIMIT, c.ORDER_TYPE_SELL_STOP, c.ORDER_TYPE_SELL_STOP_LIMIT):
            hit = market <= order.price_open
        else:
            hit = market >= order.price_open
        if not hit:
            continue
        if kind in _STOP_LIMITS:
            order.type = c.ORDER_TYPE_BUY_LIMIT if is_buy else c.ORDER_TYPE_SELL_LIMIT
            order.price_open, order.price_stoplimit = order.price_stoplimit, ZERO
            continue
        _activate(engine, order, market, time_ms)


def _activate(engine: "Engine", order: Order, price: Decimal, time_ms: int) -> None:
    side = c.ORDER_TYPE_BUY if order.type in _BUYS else c.ORDER_TYPE_SELL
    plan = engine.plan(order.symbol, side, order.volume_current, price)
    after = engine.snapshot(plan.after, engine.account.balance + plan.profit + plan.commission)
    if plan.adds_exposure and after.margin_free < 0:
        _retire(engine, order, c.ORDER_STATE_REJECTED, time_ms)
        return
    engine.commit(
        plan,
        magic=order.magic,
        comment=order.comment,
        reason=order.reason,
        type_filling=order.type_filling,
        sl=order.sl,
        tp=order.tp,
        request_price=order.price_open,
        time_ms=time_ms,
        order=order,
    )


def close_by(
    engine: "Engine", first: Position, second: Position, *, magic: int, reason: int
) -> tuple[int, int]:
    """Close `first` by the opposite `second` (hedging): both close at `second`'s open price, OUT_BY deals."""
    acct = engine.account
    spec = engine.market.spec(first.symbol)
    now = engine.now_ms()
    volume = min(first.volume, second.volume)
    price = second.price_open
    ticket = acct.take_order_ticket()
    comment = f"#{first.ticket} by #{second.ticket}"
    acct.history_orders.append(
        Order(
            ticket,
            first.symbol,
            c.ORDER_TYPE_CLOSE_BY,
            c.ORDER_STATE_FILLED,
            volume,
            ZERO,
            ZERO,
            now,
            time_done_msc=now,
            magic=magic,
            position_id=first.ticket,
            position_by_id=second.ticket,
            reason=reason,
            price_current=price,
            comment=comment,
        )
    )
    deals = []
    for position in (first, second):
        raw = engine.money.profit(spec, position.is_buy, volume, position.price_open, price)
        profit = round_money(raw, acct.currency)
        deal = Deal(
            acct.take_deal_ticket(),
            ticket,
            now,
            1 - position.type,
            c.DEAL_ENTRY_OUT_BY,
            magic,
            position.ticket,
            reason,
            volume,
            price,
            profit,
            position.symbol,
            comment,
        )
        acct.deals.append(deal)
        deals.append(deal.ticket)
        acct.balance += profit
        position.volume -= volume
        position.time_update_msc = now
        if position.volume <= 0:
            del acct.positions[position.ticket]
    return ticket, deals[0]
