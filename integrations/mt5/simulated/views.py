"""Internal state -> the official structs: floats, server-clock epoch ints, money rounded to the currency digits."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_type_hints

from integrations.mt5 import constants as c
from integrations.mt5.simulated.account import Deal, Order, Position
from integrations.mt5.simulated.engine import Engine
from integrations.mt5.simulated.market import DAY_MS, Feed
from integrations.mt5.simulated.money import round_money
from integrations.mt5.structs import (
    AccountInfo,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
)


@dataclass
class TerminalState:
    """Terminal-level switches and identity (TerminalInfo)."""

    connected: bool = True  # to the trade server
    trade_allowed: bool = True  # the "Algo Trading" button
    tradeapi_disabled: bool = False
    build: int = 5430
    build_date: str = "14 Nov 2025"
    maxbars: int = 100_000
    ping_last: int = 45_000  # microseconds
    company: str = "Simulated Broker Ltd."
    path: str = "C:\\Program Files\\MetaTrader 5 Simulated"
    data_path: str = "C:\\Users\\sim\\AppData\\Roaming\\MetaQuotes\\Terminal\\SIMULATED0000000000000000000000"
    commondata_path: str = "C:\\Users\\sim\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common"


def _f(value: Decimal) -> float:
    return float(value)


def terminal_info(state: TerminalState) -> TerminalInfo:
    return TerminalInfo(
        False,
        False,
        state.connected,
        False,
        state.trade_allowed,
        state.tradeapi_disabled,
        False,
        False,
        False,
        False,
        state.build,
        state.maxbars,
        0,
        state.ping_last if state.connected else 0,
        0.0,
        0.0,
        state.company,
        "MetaTrader 5",
        "English",
        state.path,
        state.data_path,
        state.commondata_path,
    )


def account_info(engine: Engine, *, read_only: bool = False) -> AccountInfo:
    """`read_only`: logged in with the investor password (trade_allowed False)."""
    acct = engine.account
    snap = engine.snapshot()
    return AccountInfo(
        acct.login,
        acct.trade_mode,
        acct.leverage,
        acct.limit_orders,
        acct.margin_so_mode,
        acct.trade_allowed and not read_only,
        acct.trade_expert,
        acct.margin_mode,
        acct.currency_digits,
        acct.fifo_close,
        _f(snap.balance),
        _f(snap.credit),
        _f(snap.profit),
        _f(snap.equity),
        _f(snap.margin),
        _f(snap.margin_free),
        _f(snap.margin_level),
        _f(acct.margin_so_call),
        _f(acct.margin_so_so),
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        acct.name,
        acct.server,
        acct.currency,
        acct.company,
    )


def position(engine: Engine, p: Position) -> TradePosition:
    return TradePosition(
        p.ticket,
        p.time_msc // 1000,
        p.time_msc,
        p.time_update_msc // 1000,
        p.time_update_msc,
        p.type,
        p.magic,
        p.identifier,
        p.reason,
        _f(p.volume),
        _f(p.price_open),
        _f(p.sl),
        _f(p.tp),
        _f(engine.close_price(p)),
        _f(round_money(p.swap, engine.account.currency)),
        _f(engine.position_profit(p)),
        p.symbol,
        p.comment,
        p.external_id,
    )


def order(engine: Engine, o: Order) -> TradeOrder:
    price_current = o.price_current
    if o.state == c.ORDER_STATE_PLACED and o.symbol in engine.market:
        bid, ask = engine.bid_ask(o.symbol)
        price_current = ask if o.type % 2 == 0 else bid
    return TradeOrder(
        o.ticket,
        o.time_setup_msc // 1000,
        o.time_setup_msc,
        o.time_done_msc // 1000,
        o.time_done_msc,
        o.time_expiration,
        o.type,
        o.type_time,
        o.type_filling,
        o.state,
        o.magic,
        o.position_id,
        o.position_by_id,
        o.reason,
        _f(o.volume_initial),
        _f(o.volume_current),
        _f(o.price_open),
        _f(o.sl),
        _f(o.tp),
        _f(price_current),
        _f(o.price_stoplimit),
        o.symbol,
        o.comment,
        o.external_id,
    )


def deal(d: Deal) -> TradeDeal:
    return TradeDeal(
        d.ticket,
        d.order,
        d.time_msc // 1000,
        d.time_msc,
        d.type,
        d.entry,
        d.magic,
        d.position_id,
        d.reason,
        _f(d.volume),
        _f(d.price),
        _f(d.commission),
        _f(d.swap),
        _f(d.profit),
        _f(d.fee),
        d.symbol,
        d.comment,
        d.external_id,
    )


def tick(feed: Feed) -> Tick:
    q, spec = feed.quote, feed.spec
    return Tick(
        q.time_msc // 1000,
        _f(spec.from_points(q.bid)),
        _f(spec.from_points(q.ask)),
        0.0,
        0,
        q.time_msc,
        q.flags,
        0.0,
    )


_ZERO_BY_TYPE: dict[Any, Any] = {bool: False, int: 0, float: 0.0, str: ""}
_SYMBOL_BLANK = {name: _ZERO_BY_TYPE[kind] for name, kind in get_type_hints(SymbolInfo).items()}


def symbol_info(engine: Engine, feed: Feed, *, selected: bool) -> SymbolInfo:
    spec, q = feed.spec, feed.quote
    now_ms = engine.now_ms()
    low, high = feed.day_range(now_ms)
    spread = q.ask - q.bid
    day_start_s = now_ms // DAY_MS * DAY_MS // 1000
    session_open = session_close = Decimal(0)
    for bar in reversed(feed.bars):
        if bar[0] < day_start_s:
            session_close = spec.from_points(bar[4])
            break
        session_open = spec.from_points(bar[1])
    bid = spec.from_points(q.bid)
    change = ((bid - session_close) / session_close * 100).quantize(Decimal("0.0001")) if session_close else 0
    tick_value = _f(engine.money.tick_value(spec))
    values = dict(_SYMBOL_BLANK)
    values.update(
        select=selected,
        visible=selected,
        time=q.time_msc // 1000,
        digits=spec.digits,
        spread=spread,
        spread_float=True,
        trade_calc_mode=spec.calc_mode,
        trade_mode=spec.trade_mode,
        trade_stops_level=spec.stops_level,
        trade_freeze_level=spec.freeze_level,
        trade_exemode=spec.exemode,
        swap_mode=spec.swap_mode,
        swap_rollover3days=spec.swap_rollover3days,
        expiration_mode=spec.expiration_mode,
        filling_mode=spec.filling_mode,
        order_mode=spec.order_mode,
        bid=_f(bid),
        bidhigh=_f(spec.from_points(high)),
        bidlow=_f(spec.from_points(low)),
        ask=_f(spec.from_points(q.ask)),
        askhigh=_f(spec.from_points(high + spread)),
        asklow=_f(spec.from_points(low + spread)),
        point=_f(spec.point),
        trade_tick_value=tick_value,
        trade_tick_value_profit=tick_value,
        trade_tick_value_loss=tick_value,
        trade_tick_size=_f(spec.tick),
        trade_contract_size=_f(spec.contract_size),
        volume_min=_f(spec.volume_min),
        volume_max=_f(spec.volume_max),
        volume_step=_f(spec.volume_step),
        volume_limit=_f(spec.volume_limit),
        swap_long=spec.swap_long,
        swap_short=spec.swap_short,
        margin_initial=_f(spec.margin_initial),
        margin_maintenance=_f(spec.margin_maintenance),
        session_open=_f(session_open),
        session_close=_f(session_close),
        margin_hedged=_f(spec.margin_hedged),
        price_change=float(change),
        currency_base=spec.currency_base,
        currency_profit=spec.currency_profit,
        currency_margin=spec.currency_margin,
        description=spec.description,
        exchange=spec.exchange,
        isin=spec.isin,
        name=spec.name,
        path=spec.path,
        category=spec.category,
    )
    return SymbolInfo.from_dict(values)  # type: ignore[attr-defined,no-any-return]
