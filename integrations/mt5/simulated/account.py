"""Account state of a simulated trade server: the account row, positions, pending orders, history orders, deals.

Internal records use Decimal for volumes, prices and money and server-clock epoch milliseconds for times; the
terminal turns them into the official structs (floats, epoch ints) at the API surface.

Tickets: one counter for orders and positions (a position's ticket and identifier are the ticket of the order that
opened it) and a separate counter for deals, in different ranges so mixing them up finds nothing.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from integrations.mt5 import constants as c
from integrations.mt5.simulated.catalogue import currency_digits

FIRST_ORDER_TICKET = 100_000_001
FIRST_DEAL_TICKET = 50_000_001

MARGIN_MODES = {
    "netting": c.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
    "exchange": c.ACCOUNT_MARGIN_MODE_EXCHANGE,
    "hedging": c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
}


def margin_mode_value(mode: str | int) -> int:
    if isinstance(mode, str):
        return MARGIN_MODES[mode.lower()]
    if mode not in MARGIN_MODES.values():
        raise ValueError(f"unknown margin mode {mode}")
    return mode


@dataclass
class Position:
    ticket: int
    symbol: str
    type: int  # POSITION_TYPE_BUY / SELL
    volume: Decimal
    price_open: Decimal
    time_msc: int
    time_update_msc: int
    magic: int = 0
    reason: int = c.POSITION_REASON_EXPERT
    sl: Decimal = Decimal(0)
    tp: Decimal = Decimal(0)
    swap: Decimal = Decimal(0)
    comment: str = ""
    external_id: str = ""

    @property
    def identifier(self) -> int:
        return self.ticket

    @property
    def is_buy(self) -> bool:
        return self.type == c.POSITION_TYPE_BUY


@dataclass
class Order:
    ticket: int
    symbol: str
    type: int  # ORDER_TYPE_*
    state: int
    volume_initial: Decimal
    volume_current: Decimal
    price_open: Decimal
    time_setup_msc: int
    time_done_msc: int = 0
    time_expiration: int = 0  # server epoch seconds
    type_time: int = c.ORDER_TIME_GTC
    type_filling: int = c.ORDER_FILLING_FOK
    magic: int = 0
    position_id: int = 0
    position_by_id: int = 0
    reason: int = c.ORDER_REASON_EXPERT
    sl: Decimal = Decimal(0)
    tp: Decimal = Decimal(0)
    price_current: Decimal = Decimal(0)
    price_stoplimit: Decimal = Decimal(0)
    comment: str = ""
    external_id: str = ""


@dataclass
class Deal:
    ticket: int
    order: int
    time_msc: int
    type: int  # DEAL_TYPE_*
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: Decimal
    price: Decimal
    profit: Decimal
    symbol: str
    comment: str = ""
    commission: Decimal = Decimal(0)
    swap: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    external_id: str = ""


@dataclass
class Account:
    login: int
    server: str
    password: str | None  # None: any password is accepted (accounts created on demand)
    currency: str = "USD"
    leverage: int = 100
    margin_mode: int = c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    name: str = "Simulated Trader"
    company: str = "Simulated Broker Ltd."
    investor_password: str | None = None
    trade_mode: int = c.ACCOUNT_TRADE_MODE_DEMO
    limit_orders: int = 200
    margin_so_mode: int = c.ACCOUNT_STOPOUT_MODE_PERCENT
    margin_so_call: Decimal = Decimal(50)
    margin_so_so: Decimal = Decimal(30)
    trade_allowed: bool = True
    trade_expert: bool = True
    fifo_close: bool = False
    balance: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    positions: dict[int, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # active pending orders
    history_orders: list[Order] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    next_order_ticket: int = FIRST_ORDER_TICKET
    next_deal_ticket: int = FIRST_DEAL_TICKET

    @property
    def currency_digits(self) -> int:
        return currency_digits(self.currency)

    @property
    def hedging(self) -> bool:
        return self.margin_mode == c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING

    def take_order_ticket(self) -> int:
        ticket = self.next_order_ticket
        self.next_order_ticket += 1
        return ticket

    def take_deal_ticket(self) -> int:
        ticket = self.next_deal_ticket
        self.next_deal_ticket += 1
        return ticket

    def netting_position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions.values() if p.symbol == symbol), None)
