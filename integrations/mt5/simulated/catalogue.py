"""The built-in symbol catalogue: realistic retail-broker specifications, one `SymbolSpec` per symbol.

Money-like fields are `Decimal`. `build_spec(name, overrides)` derives a spec from the catalogue (or, for a name the
catalogue lacks, from an FX template) and accepts both our field names and the MT5 `SymbolInfo` names
(`trade_contract_size`, `trade_tick_size`, `trade_stops_level`, `point`, `bid`, ...), as scenario files use them.

Calc modes covered by the catalogue: FOREX (EURUSD, GBPUSD, USDJPY, XAGUSD with margin in XAG), CFDLEVERAGE (XAUUSD),
CFDINDEX (US500, tick size 0.25 > point), CFD (GER40, EUR profit currency).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from integrations.mt5 import constants as c

FOK = 1  # SYMBOL_FILLING_FOK (symbol flag; not exported by the module)
IOC = 2  # SYMBOL_FILLING_IOC
ORDER_MODE_ALL = 127  # MARKET|LIMIT|STOP|STOP_LIMIT|SL|TP|CLOSEBY
EXPIRATION_MODE_ALL = 15  # GTC|DAY|SPECIFIED|SPECIFIED_DAY

CURRENCY_DIGITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "AUD": 2,
    "CAD": 2,
    "NZD": 2,
    "JPY": 0,
}


def currency_digits(currency: str) -> int:
    return CURRENCY_DIGITS.get(currency, 2)


@dataclass(frozen=True)
class SymbolSpec:
    name: str
    description: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    digits: int
    contract_size: Decimal
    start_bid: Decimal
    spread: int  # typical spread, points
    daily_volatility: float  # relative 1-day standard deviation of the random walk
    calc_mode: int = c.SYMBOL_CALC_MODE_FOREX
    tick_size: Decimal | None = None  # None -> point
    trade_mode: int = c.SYMBOL_TRADE_MODE_FULL
    exemode: int = c.SYMBOL_TRADE_EXECUTION_MARKET
    filling_mode: int = FOK | IOC
    order_mode: int = ORDER_MODE_ALL
    expiration_mode: int = EXPIRATION_MODE_ALL
    stops_level: int = 0
    freeze_level: int = 0
    volume_min: Decimal = Decimal("0.01")
    volume_max: Decimal = Decimal("100")
    volume_step: Decimal = Decimal("0.01")
    volume_limit: Decimal = Decimal("0")
    margin_rate: Decimal = Decimal("1")  # broker initial-margin rate (SymbolInfoMarginRate), 1 for FX
    margin_initial: Decimal = Decimal("0")  # FUTURES: money per lot
    margin_maintenance: Decimal = Decimal("0")
    margin_hedged: Decimal = Decimal("0")  # 0 = hedged legs charge only the larger leg
    swap_mode: int = c.SYMBOL_SWAP_MODE_POINTS
    swap_long: float = 0.0
    swap_short: float = 0.0
    swap_rollover3days: int = c.DAY_OF_WEEK_WEDNESDAY  # the night charged three times
    commission_per_lot: Decimal = Decimal(
        "0"
    )  # account currency, charged per side (negative deal commission)
    # Weekly trading sessions in server time: (weekday Mon=0..Sun=6, start minute, end minute). None = always open.
    sessions: tuple[tuple[int, int, int], ...] | None = None
    select: bool = True
    path: str = ""
    category: str = ""
    exchange: str = ""
    isin: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @cached_property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @cached_property
    def tick(self) -> Decimal:
        return self.tick_size if self.tick_size is not None else self.point

    @cached_property
    def tick_points(self) -> int:
        """Tick size expressed in points (1 for most symbols, 25 for US500)."""
        return int(self.tick / self.point)

    def to_points(self, price: Decimal) -> int:
        return int((price / self.point).to_integral_value())

    def from_points(self, points: int) -> Decimal:
        return Decimal(points).scaleb(-self.digits)


def _d(value: str) -> Decimal:
    return Decimal(value)


CATALOGUE: dict[str, SymbolSpec] = {
    s.name: s
    for s in (
        SymbolSpec(
            name="EURUSD",
            description="Euro vs US Dollar",
            currency_base="EUR",
            currency_profit="USD",
            currency_margin="EUR",
            digits=5,
            contract_size=_d("100000"),
            start_bid=_d("1.08500"),
            spread=10,
            daily_volatility=0.005,
            exemode=c.SYMBOL_TRADE_EXECUTION_INSTANT,
            filling_mode=FOK,
            volume_max=_d("500"),
            swap_long=-7.5,
            swap_short=2.1,
            path="Forex\\Majors\\EURUSD",
        ),
        SymbolSpec(
            name="GBPUSD",
            description="Great Britain Pound vs US Dollar",
            currency_base="GBP",
            currency_profit="USD",
            currency_margin="GBP",
            digits=5,
            contract_size=_d("100000"),
            start_bid=_d("1.26500"),
            spread=14,
            daily_volatility=0.006,
            exemode=c.SYMBOL_TRADE_EXECUTION_INSTANT,
            filling_mode=FOK,
            volume_max=_d("500"),
            swap_long=-5.2,
            swap_short=0.4,
            path="Forex\\Majors\\GBPUSD",
        ),
        SymbolSpec(
            name="USDJPY",
            description="US Dollar vs Japanese Yen",
            currency_base="USD",
            currency_profit="JPY",
            currency_margin="USD",
            digits=3,
            contract_size=_d("100000"),
            start_bid=_d("150.000"),
            spread=12,
            daily_volatility=0.006,
            exemode=c.SYMBOL_TRADE_EXECUTION_INSTANT,
            filling_mode=FOK,
            volume_max=_d("500"),
            swap_long=8.9,
            swap_short=-19.6,
            path="Forex\\Majors\\USDJPY",
        ),
        SymbolSpec(
            name="XAUUSD",
            description="Gold vs US Dollar",
            currency_base="XAU",
            currency_profit="USD",
            currency_margin="USD",
            digits=2,
            contract_size=_d("100"),
            start_bid=_d("2900.00"),
            spread=25,
            daily_volatility=0.01,
            calc_mode=c.SYMBOL_CALC_MODE_CFDLEVERAGE,
            stops_level=20,
            swap_long=-45.0,
            swap_short=12.0,
            path="Metals\\XAUUSD",
        ),
        SymbolSpec(
            name="XAGUSD",
            description="Silver vs US Dollar",
            currency_base="XAG",
            currency_profit="USD",
            currency_margin="XAG",
            digits=3,
            contract_size=_d("5000"),
            start_bid=_d("32.500"),
            spread=30,
            daily_volatility=0.015,
            filling_mode=IOC,
            stops_level=20,
            swap_long=-8.0,
            swap_short=1.5,
            path="Metals\\XAGUSD",
        ),
        SymbolSpec(
            name="US500",
            description="US SPX 500 Index CFD",
            currency_base="USD",
            currency_profit="USD",
            currency_margin="USD",
            digits=2,
            contract_size=_d("1"),
            start_bid=_d("5800.00"),
            spread=50,
            daily_volatility=0.01,
            calc_mode=c.SYMBOL_CALC_MODE_CFDINDEX,
            tick_size=_d("0.25"),
            filling_mode=IOC,
            stops_level=100,
            volume_min=_d("0.1"),
            volume_step=_d("0.1"),
            margin_rate=_d("0.05"),
            swap_mode=c.SYMBOL_SWAP_MODE_DISABLED,
            path="Indices\\US500",
        ),
        SymbolSpec(
            name="GER40",
            description="Germany 40 Index CFD",
            currency_base="EUR",
            currency_profit="EUR",
            currency_margin="EUR",
            digits=1,
            contract_size=_d("1"),
            start_bid=_d("22000.0"),
            spread=15,
            daily_volatility=0.011,
            calc_mode=c.SYMBOL_CALC_MODE_CFD,
            stops_level=50,
            volume_min=_d("0.1"),
            volume_step=_d("0.1"),
            margin_rate=_d("0.05"),
            swap_mode=c.SYMBOL_SWAP_MODE_DISABLED,
            path="Indices\\GER40",
        ),
    )
}

# Scenario/MT5 names -> SymbolSpec fields.
_ALIASES = {
    "trade_contract_size": "contract_size",
    "trade_tick_size": "tick_size",
    "trade_stops_level": "stops_level",
    "trade_freeze_level": "freeze_level",
    "trade_calc_mode": "calc_mode",
    "trade_exemode": "exemode",
    "bid": "start_bid",
    "price": "start_bid",
}
_DECIMAL_FIELDS = {f.name for f in fields(SymbolSpec) if "Decimal" in str(f.type)}
_KNOWN_FIELDS = {f.name for f in fields(SymbolSpec)}


def _to_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def build_spec(name: str, overrides: Mapping[str, Any] | None = None) -> SymbolSpec:
    """A catalogue spec with overrides; unknown names start from an FX template (EURUSD-like)."""
    overrides = dict(overrides or {})
    base = CATALOGUE.get(name)
    if base is None:
        template = CATALOGUE["EURUSD"]
        base = replace(
            template,
            name=name,
            description=name,
            path=f"Custom\\{name}",
            currency_base=str(overrides.get("currency_base", name[:3])),
            currency_profit=str(overrides.get("currency_profit", name[3:6] or "USD")),
            currency_margin=str(overrides.get("currency_margin", overrides.get("currency_base", name[:3]))),
        )
    changes: dict[str, Any] = {}
    ask = overrides.pop("ask", None)
    point = overrides.pop("point", None)
    for key, value in overrides.items():
        target = _ALIASES.get(key, key)
        if target not in _KNOWN_FIELDS:
            raise ValueError(f"unknown symbol field {key!r} for {name}")
        if target in _DECIMAL_FIELDS and value is not None:
            value = _to_decimal(value)
        changes[target] = value
    if point is not None and "digits" not in changes:
        changes["digits"] = -_to_decimal(point).normalize().as_tuple().exponent  # type: ignore[operator]
    spec = replace(base, **changes)
    if point is not None and _to_decimal(point) != spec.point:
        raise ValueError(f"{name}: point {point} does not match digits {spec.digits}")
    if "start_bid" in changes:
        spec = replace(spec, start_bid=spec.start_bid.quantize(spec.point))
    if ask is not None:
        spread = spec.to_points(_to_decimal(ask) - spec.start_bid)
        if spread < 0:
            raise ValueError(f"{name}: ask below bid")
        spec = replace(spec, spread=spread)
    return spec
