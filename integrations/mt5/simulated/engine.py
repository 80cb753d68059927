"""The simulated trade server: valuation, fills (netting and hedging), SL/TP, stop-out, pending-order activation.

A fill is first *planned* (what happens to which position, realised profit, the positions afterwards) and then
*committed*; order_check evaluates the plan without committing, order_send commits it. Every fill writes one history
order (state FILLED) and one deal. Server-side closes carry reason SL 4 / TP 5 / SO 6 and the broker-style comment
(`[sl 1.08500]`, `[tp ...]`, `[so 29.50%/301.25/1021.00]`).

Margin of a position is computed at its open price (conversion to the account currency at current rates); on hedging
accounts opposite legs of a symbol charge the larger leg plus `margin_hedged/contract_size` of the smaller one.
"""

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from integrations.mt5 import constants as c
from integrations.mt5.simulated import triggers
from integrations.mt5.simulated.account import Account, Deal, Order, Position
from integrations.mt5.simulated.catalogue import SymbolSpec
from integrations.mt5.simulated.clock import SimClock
from integrations.mt5.simulated.errors import TradeReject
from integrations.mt5.simulated.market import Market
from integrations.mt5.simulated.money import MoneyCalc, round_money
from integrations.mt5.simulated.results import FillPlan, Snapshot

ZERO = Decimal(0)


# Deals that are not trades: balance, credit, charge, correction, bonus.
NON_TRADING_DEAL_TYPES = frozenset(
    {c.DEAL_TYPE_BALANCE, c.DEAL_TYPE_CREDIT, c.DEAL_TYPE_CHARGE, c.DEAL_TYPE_CORRECTION, c.DEAL_TYPE_BONUS}
)


class Engine:
    def __init__(self, account: Account, market: Market, clock: SimClock, *, swaps: bool = True) -> None:
        self.account = account
        self.market = market
        self.clock = clock
        self.money = MoneyCalc(market, account.currency)
        self.swaps = swaps  # charge swaps at the daily rollover
        self.rollover_day = clock.server_ms() // 86_400_000

    # --- time and prices -----------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.clock.server_ms()

    def active_symbols(self) -> list[str]:
        names = {p.symbol for p in self.account.positions.values()} | {
            o.symbol for o in self.account.orders.values()
        }
        for name in list(names):
            names.update(self.money.conversion_symbols(self.market.spec(name)))
        return sorted(names)

    def sync(self) -> None:
        """Bring every symbol that matters for the account up to now, firing SL/TP/stop-out/pending on the way."""
        self.market.advance(self.active_symbols(), self.now_ms(), self.on_tick)

    def refresh(self, names: Iterable[str]) -> None:
        """Catch up symbols that are only being looked at (no positions on them)."""
        self.market.advance(names, self.now_ms())

    def request_spec(self, name: str) -> SymbolSpec:
        if name not in self.market:
            raise TradeReject(c.TRADE_RETCODE_INVALID)
        return self.market.spec(name)

    def require_open(self, symbol: str) -> None:
        if not self.market.feed(symbol).is_open(self.now_ms()):
            raise TradeReject(c.TRADE_RETCODE_MARKET_CLOSED)

    def bid_ask(self, symbol: str) -> tuple[Decimal, Decimal]:
        return self.market.feeds[symbol].prices()

    def close_price(self, position: Position) -> Decimal:
        bid, ask = self.bid_ask(position.symbol)
        return bid if position.is_buy else ask

    # --- valuation -----------------------------------------------------------------------------------------------
    def position_profit(self, position: Position) -> Decimal:
        spec = self.market.spec(position.symbol)
        raw = self.money.profit(
            spec, position.is_buy, position.volume, position.price_open, self.close_price(position)
        )
        return round_money(raw, self.account.currency)

    def _symbol_margin(self, spec: SymbolSpec, legs: list[Position]) -> Decimal:
        leverage = self.account.leverage
        buys = sum(
            (self.money.margin(spec, p.volume, p.price_open, leverage) for p in legs if p.is_buy), ZERO
        )
        sells = sum(
            (self.money.margin(spec, p.volume, p.price_open, leverage) for p in legs if not p.is_buy), ZERO
        )
        hedged_ratio = spec.margin_hedged / spec.contract_size if spec.contract_size else ZERO
        return max(buys, sells) + min(buys, sells) * hedged_ratio

    def snapshot(
        self, positions: Iterable[Position] | None = None, balance: Decimal | None = None
    ) -> Snapshot:
        acct = self.account
        positions = list(acct.positions.values() if positions is None else positions)
        balance = acct.balance if balance is None else balance
        profit = sum((self.position_profit(p) for p in positions), ZERO)
        swap = sum((p.swap for p in positions), ZERO)
        by_symbol: dict[str, list[Position]] = {}
        for p in positions:
            by_symbol.setdefault(p.symbol, []).append(p)
        margin = round_money(
            sum((self._symbol_margin(self.market.spec(s), legs) for s, legs in by_symbol.items()), ZERO),
            acct.currency,
        )
        equity = balance + acct.credit + profit + swap
        level = (equity / margin * 100).quantize(Decimal("0.01")) if margin > 0 else ZERO
        return Snapshot(balance, acct.credit, profit + swap, equity, margin, equity - margin, level)

    # --- planning and committing fills ---------------------------------------------------------------------------
    def plan(
        self, symbol: str, order_type: int, volume: Decimal, price: Decimal, position_ticket: int = 0
    ) -> FillPlan:
        acct = self.account
        spec = self.market.spec(symbol)
        target: Position | None = None
        if position_ticket:
            target = acct.positions.get(position_ticket)
            if target is None:
                raise TradeReject(c.TRADE_RETCODE_POSITION_CLOSED)
            if target.symbol != symbol:
                raise TradeReject(c.TRADE_RETCODE_INVALID)
        elif not acct.hedging:
            target = acct.netting_position(symbol)
        is_buy = order_type == c.ORDER_TYPE_BUY
        if target is not None and position_ticket and acct.hedging and target.is_buy == is_buy:
            raise TradeReject(c.TRADE_RETCODE_INVALID)
        commission = round_money(-spec.commission_per_lot * volume, acct.currency)
        after = [replace(p) for p in acct.positions.values() if target is None or p.ticket != target.ticket]
        if target is None or target.is_buy == is_buy:
            entry, close_volume, open_volume, profit, swap = c.DEAL_ENTRY_IN, ZERO, volume, ZERO, ZERO
            if target is None:
                after.append(self._new_position(0, symbol, order_type, volume, price))
            else:
                merged = replace(target, volume=target.volume + volume)
                merged.price_open = (target.price_open * target.volume + price * volume) / merged.volume
                after.append(merged)
        else:
            if volume > target.volume and (acct.hedging or position_ticket):
                raise TradeReject(c.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
            close_volume = min(volume, target.volume)
            open_volume = volume - close_volume
            raw = self.money.profit(spec, target.is_buy, close_volume, target.price_open, price)
            profit = round_money(raw, acct.currency)
            swap = round_money(target.swap * close_volume / target.volume, acct.currency)
            entry = c.DEAL_ENTRY_INOUT if open_volume > 0 else c.DEAL_ENTRY_OUT
            if open_volume > 0:
                after.append(
                    replace(target, type=1 - target.type, volume=open_volume, price_open=price, swap=ZERO)
                )
            elif close_volume < target.volume:
                after.append(replace(target, volume=target.volume - close_volume, swap=target.swap - swap))
        return FillPlan(
            symbol,
            order_type,
            volume,
            price,
            entry,
            target,
            close_volume,
            open_volume,
            profit,
            commission,
            swap,
            after,
        )

    def _new_position(
        self, ticket: int, symbol: str, order_type: int, volume: Decimal, price: Decimal
    ) -> Position:
        now = self.now_ms()
        return Position(ticket, symbol, order_type, volume, price, time_msc=now, time_update_msc=now)

    def commit(
        self,
        plan: FillPlan,
        *,
        magic: int = 0,
        comment: str = "",
        reason: int = c.ORDER_REASON_EXPERT,
        type_filling: int = c.ORDER_FILLING_FOK,
        sl: Decimal = ZERO,
        tp: Decimal = ZERO,
        request_price: Decimal = ZERO,
        time_ms: int | None = None,
        order: Order | None = None,
    ) -> tuple[int, int]:
        """Apply a plan: positions, a FILLED history order (new, or the activated pending `order`), one deal."""
        acct = self.account
        now = self.now_ms() if time_ms is None else time_ms
        ticket = order.ticket if order is not None else acct.take_order_ticket()
        target = plan.position
        if target is None:
            position = Position(
                ticket,
                plan.symbol,
                plan.order_type,
                plan.volume,
                plan.price,
                time_msc=now,
                time_update_msc=now,
                magic=magic,
                reason=min(reason, c.POSITION_REASON_EXPERT),
                sl=sl,
                tp=tp,
                comment=comment,
            )
            acct.positions[ticket] = position
            position_id = ticket
        else:
            position_id = target.ticket
            target.time_update_msc = now
            if plan.entry == c.DEAL_ENTRY_IN:
                new_volume = target.volume + plan.volume
                target.price_open = (
                    target.price_open * target.volume + plan.price * plan.volume
                ) / new_volume
                target.volume = new_volume
                target.sl, target.tp = sl or target.sl, tp or target.tp
            elif plan.open_volume > 0:  # netting reversal
                target.type, target.volume, target.price_open = 1 - target.type, plan.open_volume, plan.price
                target.sl, target.tp, target.swap = sl, tp, ZERO
            else:
                target.volume -= plan.close_volume
                target.swap -= plan.swap
                if target.volume <= 0:
                    del acct.positions[target.ticket]
        if order is None:
            order = Order(
                ticket,
                plan.symbol,
                plan.order_type,
                c.ORDER_STATE_FILLED,
                plan.volume,
                ZERO,
                request_price or plan.price,
                time_setup_msc=now,
                type_filling=type_filling,
                magic=magic,
                reason=reason,
                sl=sl,
                tp=tp,
                comment=comment,
            )
        else:
            acct.orders.pop(order.ticket, None)
            order.state, order.volume_current = c.ORDER_STATE_FILLED, ZERO
        order.time_done_msc, order.position_id, order.price_current = now, position_id, plan.price
        acct.history_orders.append(order)
        deal = Deal(
            acct.take_deal_ticket(),
            ticket,
            now,
            plan.order_type,
            plan.entry,
            magic,
            position_id,
            reason,
            plan.volume,
            plan.price,
            plan.profit,
            plan.symbol,
            comment,
            commission=plan.commission,
            swap=plan.swap,
        )
        acct.deals.append(deal)
        acct.balance += plan.profit + plan.commission + plan.swap
        return ticket, deal.ticket

    def balance_operation(
        self, amount: Decimal, comment: str, *, credit: bool = False, deal_type: int | None = None
    ) -> int:
        """Book a non-trading deal: BALANCE (2, default), CREDIT (3, moves `credit`), CHARGE (4), CORRECTION (5) or
        BONUS (6); every type but CREDIT moves `balance`. Returns the deal ticket."""
        acct = self.account
        if deal_type is None:
            deal_type = c.DEAL_TYPE_CREDIT if credit else c.DEAL_TYPE_BALANCE
        if deal_type not in NON_TRADING_DEAL_TYPES:
            raise ValueError(f"deal type {deal_type} is not a balance operation")
        deal = Deal(
            acct.take_deal_ticket(),
            0,
            self.now_ms(),
            deal_type,
            c.DEAL_ENTRY_IN,
            0,
            0,
            c.DEAL_REASON_CLIENT,
            ZERO,
            ZERO,
            amount,
            "",
            comment,
        )
        acct.deals.append(deal)
        if deal_type == c.DEAL_TYPE_CREDIT:
            acct.credit += amount
        else:
            acct.balance += amount
        return deal.ticket

    # --- server-side events (triggers.py) ------------------------------------------------------------------------
    def on_tick(self, time_ms: int, changed: list[str]) -> None:
        """After prices moved: rollover swaps, pending orders, SL/TP, stop-out."""
        triggers.on_tick(self, time_ms, changed)

    def check_stop_out(self, time_ms: int | None = None) -> None:
        triggers.check_stop_out(self, self.now_ms() if time_ms is None else time_ms)
