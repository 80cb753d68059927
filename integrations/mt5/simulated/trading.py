"""What the trade server does with a request: TRADE_ACTION_DEAL, SLTP and CLOSE_BY here, pending actions in
`pending.py`. `evaluate(..., execute=False)` is order_check (nothing changes; the account as it would be after),
`execute=True` is order_send.

Netting vs hedging follows the real servers: on a hedging account a DEAL without `position` always opens a new
position (even opposite to an existing one); with `position` it closes (partially) that position. On a netting
account a DEAL nets against the symbol's position: increase (IN), reduce/close (OUT) or reverse (INOUT, the position
keeps its ticket/identifier).
"""

from decimal import Decimal

from integrations.mt5 import constants as c
from integrations.mt5.simulated import pending
from integrations.mt5.simulated.checks import (
    check_requested_price,
    check_stops,
    check_trade_mode,
    check_volume,
    executed_filling,
    price_decimal,
)
from integrations.mt5.simulated.engine import Engine
from integrations.mt5.simulated.errors import TradeReject, retcode_comment
from integrations.mt5.simulated.results import Outcome
from integrations.mt5.structs import TradeRequest

ZERO = Decimal(0)
_PRICED_EXECUTION = (c.SYMBOL_TRADE_EXECUTION_INSTANT, c.SYMBOL_TRADE_EXECUTION_REQUEST)


def _deal(engine: Engine, req: TradeRequest, execute: bool, reason: int) -> Outcome:
    spec = engine.request_spec(req.symbol)
    if req.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
        raise TradeReject(c.TRADE_RETCODE_INVALID_ORDER)
    volume = check_volume(spec, req.volume)
    engine.require_open(spec.name)
    bid, ask = engine.bid_ask(spec.name)
    is_buy = req.type == c.ORDER_TYPE_BUY
    fill = ask if is_buy else bid
    plan = engine.plan(spec.name, req.type, volume, fill, req.position)
    check_trade_mode(spec, is_buy=is_buy, opening=plan.adds_exposure)
    filling = executed_filling(spec, req.type_filling)
    sl = price_decimal(spec, req.sl, c.TRADE_RETCODE_INVALID_STOPS)
    tp = price_decimal(spec, req.tp, c.TRADE_RETCODE_INVALID_STOPS)
    if plan.adds_exposure and not req.position:
        check_stops(spec, is_buy=is_buy, reference=bid if is_buy else ask, sl=sl, tp=tp)
    else:
        sl = tp = ZERO  # a close ignores SL/TP
    requested = ZERO
    if execute and spec.exemode in _PRICED_EXECUTION:
        requested = price_decimal(spec, req.price, c.TRADE_RETCODE_INVALID_PRICE)
        check_requested_price(spec, requested=requested, market=fill, deviation=req.deviation)
    after = engine.snapshot(plan.after, engine.account.balance + plan.profit + plan.commission)
    if plan.adds_exposure and after.margin_free < 0:
        reject = TradeReject(c.TRADE_RETCODE_NO_MONEY)
        reject.after = after  # type: ignore[attr-defined]
        raise reject
    if not execute:
        return Outcome(0, "Done", after=after)
    order, deal = engine.commit(
        plan,
        magic=req.magic,
        comment=req.comment,
        reason=reason,
        type_filling=filling,
        sl=sl,
        tp=tp,
        request_price=requested,
    )
    return Outcome(
        c.TRADE_RETCODE_DONE, retcode_comment(c.TRADE_RETCODE_DONE), deal, order, volume, fill, bid, ask
    )


def _sltp(engine: Engine, req: TradeRequest, execute: bool, reason: int) -> Outcome:
    acct = engine.account
    if req.position:
        position = acct.positions.get(req.position)
    elif not acct.hedging and req.symbol:
        position = acct.netting_position(req.symbol)
    else:
        raise TradeReject(c.TRADE_RETCODE_INVALID)
    if position is None:
        raise TradeReject(c.TRADE_RETCODE_POSITION_CLOSED)
    if req.symbol and req.symbol != position.symbol:
        raise TradeReject(c.TRADE_RETCODE_INVALID)
    spec = engine.market.spec(position.symbol)
    engine.require_open(spec.name)
    sl = price_decimal(spec, req.sl, c.TRADE_RETCODE_INVALID_STOPS)
    tp = price_decimal(spec, req.tp, c.TRADE_RETCODE_INVALID_STOPS)
    if sl == position.sl and tp == position.tp:
        raise TradeReject(c.TRADE_RETCODE_NO_CHANGES)
    current = engine.close_price(position)
    freeze = spec.point * spec.freeze_level
    if freeze and any(level and abs(current - level) <= freeze for level in (position.sl, position.tp)):
        raise TradeReject(c.TRADE_RETCODE_FROZEN)
    check_stops(spec, is_buy=position.is_buy, reference=current, sl=sl, tp=tp)
    if not execute:
        return Outcome(0, "Done", after=engine.snapshot())
    position.sl, position.tp = sl, tp
    return Outcome(c.TRADE_RETCODE_DONE, retcode_comment(c.TRADE_RETCODE_DONE))


def _close_by(engine: Engine, req: TradeRequest, execute: bool, reason: int) -> Outcome:
    acct = engine.account
    if not acct.hedging:
        raise TradeReject(c.TRADE_RETCODE_INVALID)
    first, second = acct.positions.get(req.position), acct.positions.get(req.position_by)
    if first is None or second is None:
        raise TradeReject(c.TRADE_RETCODE_POSITION_CLOSED)
    if first.symbol != second.symbol or first.type == second.type:
        raise TradeReject(c.TRADE_RETCODE_INVALID)
    engine.require_open(first.symbol)
    if not execute:
        return Outcome(0, "Done", after=engine.snapshot())
    order, deal = pending.close_by(engine, first, second, magic=req.magic, reason=reason)
    return Outcome(c.TRADE_RETCODE_DONE, retcode_comment(c.TRADE_RETCODE_DONE), deal, order)


_ACTIONS = {
    c.TRADE_ACTION_DEAL: _deal,
    c.TRADE_ACTION_SLTP: _sltp,
    c.TRADE_ACTION_CLOSE_BY: _close_by,
    c.TRADE_ACTION_PENDING: pending.place,
    c.TRADE_ACTION_MODIFY: pending.modify,
    c.TRADE_ACTION_REMOVE: pending.remove,
}


def evaluate(
    engine: Engine, req: TradeRequest, *, execute: bool, reason: int = c.ORDER_REASON_EXPERT
) -> Outcome:
    """Run a request through the trade server. Rejections come back as an Outcome with zeroed fields (a requote
    carries the new bid/ask)."""
    try:
        handler = _ACTIONS.get(req.action)
        if handler is None:
            raise TradeReject(c.TRADE_RETCODE_INVALID)
        return handler(engine, req, execute, reason)  # type: ignore[operator,no-any-return]
    except TradeReject as reject:
        outcome = Outcome(reject.retcode, reject.comment, after=getattr(reject, "after", None))
        if (
            reject.retcode in (c.TRADE_RETCODE_REQUOTE, c.TRADE_RETCODE_PRICE_CHANGED)
            and req.symbol in engine.market
        ):
            outcome.bid, outcome.ask = engine.bid_ask(req.symbol)
        return outcome
