"""Value objects passed between the engine, the request handlers and the API surface."""

from dataclasses import dataclass
from decimal import Decimal

from integrations.mt5.simulated.account import Position

ZERO = Decimal(0)


@dataclass(frozen=True)
class Snapshot:
    balance: Decimal
    credit: Decimal
    profit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal


@dataclass
class Outcome:
    """What the trade server answered: becomes OrderSendResult / OrderCheckResult."""

    retcode: int
    comment: str
    deal: int = 0
    order: int = 0
    volume: Decimal = ZERO
    price: Decimal = ZERO
    bid: Decimal = ZERO
    ask: Decimal = ZERO
    after: Snapshot | None = None  # the account after the trade (order_check)


@dataclass
class FillPlan:
    symbol: str
    order_type: int  # ORDER_TYPE_BUY / SELL
    volume: Decimal
    price: Decimal
    entry: int
    position: Position | None  # the existing position it changes, None when it opens a new one
    close_volume: Decimal
    open_volume: Decimal
    profit: Decimal  # realised, account currency, rounded
    commission: Decimal
    swap: Decimal  # accumulated swap realised with the closed part
    after: list[Position]  # all positions as they would be afterwards

    @property
    def adds_exposure(self) -> bool:
        return self.open_volume > 0
