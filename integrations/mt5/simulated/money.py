"""Margin, profit and currency conversion (REFERENCE §7), in Decimal.

Formulas by `trade_calc_mode` (S8; `rate` = the symbol's margin rate):

| mode              | margin (margin currency)                       | profit (profit currency)              |
|-------------------|------------------------------------------------|---------------------------------------|
| FOREX             | lots·contract / leverage · rate                | (close - open)·contract·lots          |
| FOREX_NO_LEVERAGE | lots·contract · rate                           | same                                  |
| CFD               | lots·contract·price · rate                     | same                                  |
| CFDINDEX          | lots·contract·price · tick_value/tick_size·rate| same                                  |
| CFDLEVERAGE       | lots·contract·price / leverage · rate          | same                                  |
| FUTURES, EXCH_*   | lots·margin_initial · rate                     | (close - open)·tick_value/tick_size·lots |

Conversion to the account currency: when the symbol itself links the two currencies (USDJPY profit in JPY on a USD
account) the trade's own price is used (that is why the docs' USDJPY example gives 276.54 buying and 278.09
selling); otherwise the current bid of a direct pair (multiply) or ask of the inverse pair (divide), else via USD.
"""

from decimal import ROUND_HALF_UP, Decimal

from integrations.mt5 import constants as c
from integrations.mt5.simulated.catalogue import SymbolSpec, currency_digits
from integrations.mt5.simulated.market import Market

_LEVERAGED = {c.SYMBOL_CALC_MODE_FOREX, c.SYMBOL_CALC_MODE_CFDLEVERAGE}
_EXCHANGE = {
    c.SYMBOL_CALC_MODE_FUTURES,
    c.SYMBOL_CALC_MODE_EXCH_FUTURES,
    c.SYMBOL_CALC_MODE_EXCH_OPTIONS,
    c.SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN,
}


class ConversionError(LookupError):
    pass


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-currency_digits(currency)), rounding=ROUND_HALF_UP)


class MoneyCalc:
    def __init__(self, market: Market, account_currency: str) -> None:
        self.market = market
        self.currency = account_currency

    # --- conversion ----------------------------------------------------------------------------------------------
    def _pair_rate(self, src: str, dst: str) -> Decimal | None:
        for feed in self.market.feeds.values():
            spec, quote = feed.spec, feed.quote
            if spec.currency_base == src and spec.currency_profit == dst and quote.bid > 0:
                return spec.from_points(quote.bid)
            if spec.currency_base == dst and spec.currency_profit == src and quote.ask > 0:
                return 1 / spec.from_points(quote.ask)
        return None

    def rate(self, src: str, dst: str) -> Decimal:
        if src == dst:
            return Decimal(1)
        direct = self._pair_rate(src, dst)
        if direct is not None:
            return direct
        if "USD" not in (src, dst):
            to_usd, from_usd = self._pair_rate(src, "USD"), self._pair_rate("USD", dst)
            if to_usd is not None and from_usd is not None:
                return to_usd * from_usd
        raise ConversionError(f"no rate {src}->{dst}")

    def convert(
        self, amount: Decimal, src: str, *, spec: SymbolSpec | None = None, price: Decimal | None = None
    ) -> Decimal:
        """`amount` in `src` -> account currency, using the symbol's own price when it links the two."""
        dst = self.currency
        if src == dst:
            return amount
        if spec is not None and price is not None and price > 0:
            if spec.currency_base == src and spec.currency_profit == dst:
                return amount * price
            if spec.currency_profit == src and spec.currency_base == dst:
                return amount / price
        return amount * self.rate(src, dst)

    def conversion_symbols(self, spec: SymbolSpec) -> list[str]:
        """Symbols whose prices feed the conversion of this symbol's margin and profit."""
        wanted = {spec.currency_margin, spec.currency_profit, "USD"} - {self.currency}
        names = []
        for name, feed in self.market.feeds.items():
            pair = {feed.spec.currency_base, feed.spec.currency_profit}
            if pair & wanted and (self.currency in pair or "USD" in pair):
                names.append(name)
        return names

    # --- margin and profit ---------------------------------------------------------------------------------------
    def margin_native(self, spec: SymbolSpec, volume: Decimal, price: Decimal, leverage: int) -> Decimal:
        mode = spec.calc_mode
        lots = volume * spec.contract_size
        if mode in _EXCHANGE or (mode >= c.SYMBOL_CALC_MODE_EXCH_STOCKS and spec.margin_initial > 0):
            margin = volume * spec.margin_initial
        elif mode == c.SYMBOL_CALC_MODE_FOREX:
            margin = lots / leverage
        elif mode == c.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE:
            margin = lots
        elif mode == c.SYMBOL_CALC_MODE_CFDINDEX:
            tick_value = spec.contract_size * spec.tick
            margin = lots * price * tick_value / spec.tick
        elif mode == c.SYMBOL_CALC_MODE_CFDLEVERAGE:
            margin = lots * price / leverage
        else:  # CFD, exchange stocks/bonds without initial margin
            margin = lots * price
        return margin * spec.margin_rate

    def margin(self, spec: SymbolSpec, volume: Decimal, price: Decimal, leverage: int) -> Decimal:
        return self.convert(
            self.margin_native(spec, volume, price, leverage), spec.currency_margin, spec=spec, price=price
        )

    def profit_native(
        self, spec: SymbolSpec, is_buy: bool, volume: Decimal, open_: Decimal, close: Decimal
    ) -> Decimal:
        move = (close - open_) if is_buy else (open_ - close)
        if spec.calc_mode in _EXCHANGE:
            tick_value = spec.contract_size * spec.tick
            return move * tick_value / spec.tick * volume
        return move * spec.contract_size * volume

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: Decimal, open_: Decimal, close: Decimal
    ) -> Decimal:
        native = self.profit_native(spec, is_buy, volume, open_, close)
        return self.convert(native, spec.currency_profit, spec=spec, price=close)

    def tick_value(self, spec: SymbolSpec) -> Decimal:
        """Account-currency value of one tick for one lot (SymbolInfo.trade_tick_value)."""
        quote = self.market.feed(spec.name).quote
        price = spec.from_points(quote.bid)
        native = spec.contract_size * spec.tick
        try:
            return self.convert(native, spec.currency_profit, spec=spec, price=price)
        except ConversionError:
            return Decimal(0)
