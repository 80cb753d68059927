"""Server-side events of the simulated trade server, run at every tick of a symbol that matters to the account.

* Swap rollover at server midnight for the nights starting Monday..Friday, triple on `swap_rollover3days`
  (Wednesday): POINTS mode is `swap · point · contract · lots` in the profit currency, CURRENCY_SYMBOL/MARGIN/DEPOSIT
  are money per lot; interest/reopen modes are not simulated (no swap).
* Pending orders: expiry and activation (pending.py).
* SL/TP with the bid/ask rules: a buy closes at the bid (SL when bid <= sl, TP when bid >= tp), a sell at the ask
  (SL when ask >= sl, TP when ask <= tp); filled at the market price, so a gap slips.
* Stop-out: while margin_level <= margin_so_so (percent mode; equity <= margin_so_so in money mode) the position with
  the largest loss is closed, reason SO.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from integrations.mt5 import constants as c
from integrations.mt5.simulated.account import Position
from integrations.mt5.simulated.market import DAY_MS
from integrations.mt5.simulated.pending import process_pending

if TYPE_CHECKING:
    from integrations.mt5.simulated.engine import Engine
    from integrations.mt5.simulated.results import Snapshot

_SWAP_PER_LOT_MODES = (
    c.SYMBOL_SWAP_MODE_CURRENCY_SYMBOL,
    c.SYMBOL_SWAP_MODE_CURRENCY_MARGIN,
    c.SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT,
)


def on_tick(engine: "Engine", time_ms: int, changed: list[str]) -> None:
    rollover(engine, time_ms)
    process_pending(engine, time_ms, changed)
    for position in list(engine.account.positions.values()):
        if position.symbol in changed:
            check_stops(engine, position, time_ms)
    check_stop_out(engine, time_ms)


def close_by_server(engine: "Engine", position: Position, reason: int, comment: str, time_ms: int) -> int:
    price = engine.close_price(position)
    order_type = c.ORDER_TYPE_SELL if position.is_buy else c.ORDER_TYPE_BUY
    plan = engine.plan(position.symbol, order_type, position.volume, price, position.ticket)
    _, deal = engine.commit(
        plan, magic=position.magic, comment=comment, reason=reason, request_price=price, time_ms=time_ms
    )
    return deal


def check_stops(engine: "Engine", position: Position, time_ms: int) -> None:
    digits = engine.market.spec(position.symbol).digits
    price = engine.close_price(position)
    sl, tp = position.sl, position.tp
    if position.is_buy:
        hit_sl, hit_tp = sl > 0 and price <= sl, tp > 0 and price >= tp
    else:
        hit_sl, hit_tp = sl > 0 and price >= sl, tp > 0 and price <= tp
    if hit_sl:
        close_by_server(engine, position, c.DEAL_REASON_SL, f"[sl {sl:.{digits}f}]", time_ms)
    elif hit_tp:
        close_by_server(engine, position, c.DEAL_REASON_TP, f"[tp {tp:.{digits}f}]", time_ms)


def _stopped_out(engine: "Engine", snap: "Snapshot") -> bool:
    if snap.margin <= 0:
        return False
    if engine.account.margin_so_mode == c.ACCOUNT_STOPOUT_MODE_MONEY:
        return snap.equity <= engine.account.margin_so_so
    return snap.margin_level <= engine.account.margin_so_so


def check_stop_out(engine: "Engine", time_ms: int) -> None:
    while engine.account.positions:
        snap = engine.snapshot()
        if not _stopped_out(engine, snap):
            return
        worst = min(engine.account.positions.values(), key=engine.position_profit)
        comment = f"[so {snap.margin_level:.2f}%/{snap.equity:.2f}/{snap.margin:.2f}]"
        close_by_server(engine, worst, c.DEAL_REASON_SO, comment, time_ms)


def rollover(engine: "Engine", time_ms: int) -> None:
    """Charge swaps for every server midnight crossed since the last rollover."""
    day = time_ms // DAY_MS
    last = engine.rollover_day
    engine.rollover_day = max(last, day)
    if not engine.swaps or not engine.account.positions:
        return
    for crossed in range(last + 1, day + 1):
        night = datetime.fromtimestamp((crossed - 1) * 86_400, tz=UTC).weekday()  # 0 = Monday
        if night > 4:
            continue
        for position in engine.account.positions.values():
            spec = engine.market.spec(position.symbol)
            triple = 3 if (night + 1) % 7 == spec.swap_rollover3days else 1
            position.swap += swap_for_one_night(engine, position) * triple


def swap_for_one_night(engine: "Engine", position: Position) -> Decimal:
    spec = engine.market.spec(position.symbol)
    rate = Decimal(str(spec.swap_long if position.is_buy else spec.swap_short))
    if spec.swap_mode == c.SYMBOL_SWAP_MODE_POINTS:
        native = rate * spec.point * spec.contract_size * position.volume
        return engine.money.convert(
            native, spec.currency_profit, spec=spec, price=engine.close_price(position)
        )
    if spec.swap_mode in _SWAP_PER_LOT_MODES:
        currency = {
            c.SYMBOL_SWAP_MODE_CURRENCY_SYMBOL: spec.currency_base,
            c.SYMBOL_SWAP_MODE_CURRENCY_MARGIN: spec.currency_margin,
            c.SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT: engine.account.currency,
        }[spec.swap_mode]
        return engine.money.convert(rate * position.volume, currency)
    return Decimal(0)
