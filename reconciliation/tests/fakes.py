"""A small in-memory Mt5Gateway (our types, no terminal API) for service tests that script exact terminal answers.

End-to-end tests use the simulated terminal through the real gateway stack instead (see conftest `sim_account`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from integrations.mt5.errors import GatewayInvalidRequest, GatewayTimeout
from integrations.mt5.types import (
    AccountState,
    Bar,
    Deal,
    MarginMode,
    Position,
    Side,
    SymbolSpec,
    TerminalState,
    Tick,
)

SERVER_TZ = timezone(timedelta(hours=2))
SYMBOLS = {
    "EURUSD": (5, Decimal("0.00001")),
    "EURUSD.m": (5, Decimal("0.00001")),
    "GBPUSD": (5, Decimal("0.00001")),
    "USDJPY": (3, Decimal("0.001")),
    "XAUUSD": (2, Decimal("0.01")),
    "XAUUSD.m": (2, Decimal("0.01")),
}


def symbol_spec(name: str, digits: int, point: Decimal) -> SymbolSpec:
    one = Decimal(1)
    return SymbolSpec(
        name=name,
        description=name,
        digits=digits,
        point=point,
        trade_tick_size=point,
        trade_tick_value=one,
        trade_contract_size=Decimal(100000),
        volume_min=Decimal("0.01"),
        volume_max=Decimal(100),
        volume_step=Decimal("0.01"),
        trade_stops_level=0,
        trade_freeze_level=0,
        trade_mode=4,
        trade_exemode=2,
        trade_calc_mode=0,
        filling_mode=1,
        currency_base=name[:3],
        currency_profit=name[3:6],
        currency_margin=name[:3],
        spread=10,
    )


def position(
    ticket: int,
    *,
    symbol: str = "EURUSD",
    side: str = "buy",
    volume: str = "0.50",
    price_open: str = "1.08500",
    sl: str | None = None,
    tp: str | None = None,
    magic: int = 0,
    comment: str = "",
    time: datetime | None = None,
) -> Position:
    time = time or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    server_time = time.astimezone(SERVER_TZ)
    return Position(
        ticket=ticket,
        identifier=ticket,
        symbol=symbol,
        side=Side(side),
        volume=Decimal(volume),
        price_open=Decimal(price_open),
        price_current=Decimal(price_open),
        sl=Decimal(sl) if sl else None,
        tp=Decimal(tp) if tp else None,
        swap=Decimal("0.00"),
        profit=Decimal("0.00"),
        magic=magic,
        comment=comment,
        reason=3,
        time=time,
        server_time=server_time,
        time_epoch=int(time.timestamp()) + 7200,
    )


def closing_deal(
    ticket: int, *, position_id: int, reason: int, entry: int = 1, symbol: str = "EURUSD"
) -> Deal:
    time = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    return Deal(
        ticket=ticket,
        order=ticket,
        position_id=position_id,
        symbol=symbol,
        type=1,
        entry=entry,
        reason=reason,
        volume=Decimal("0.50"),
        price=Decimal("1.08000"),
        commission=Decimal(0),
        swap=Decimal(0),
        profit=Decimal("-250.00"),
        fee=Decimal(0),
        magic=0,
        comment="",
        time=time,
        server_time=time.astimezone(SERVER_TZ),
        time_epoch=int(time.timestamp()) + 7200,
        time_msc=int(time.timestamp()) * 1000,
    )


@dataclass
class FakeGateway:
    login: int = 5001
    server: str = "Sim-Demo"
    open_positions: list[Position] = field(default_factory=list)
    history: list[Deal] = field(default_factory=list)
    # Deals that reach history only after this many deals_for_position calls (history lag).
    lagging: list[Deal] = field(default_factory=list)
    lag_calls: int = 0
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    balance: Decimal = Decimal("10000.00")
    connected: bool = True  # to the trade server

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if call in self.fail:
            raise self.fail[call]

    def account(self) -> AccountState:
        self._enter("account")
        now = datetime.now(UTC)
        return AccountState(
            login=self.login,
            server=self.server,
            company="Sim",
            name="Trader",
            currency="USD",
            currency_digits=2,
            leverage=100,
            margin_mode=MarginMode.HEDGING,
            trade_allowed=True,
            trade_expert=True,
            balance=self.balance,
            credit=Decimal(0),
            profit=Decimal(0),
            equity=self.balance,
            margin=Decimal(0),
            margin_free=self.balance,
            margin_level=Decimal(0),
            margin_so_call=Decimal(50),
            margin_so_so=Decimal(30),
            time=now,
            server_time=now.astimezone(SERVER_TZ),
        )

    def terminal(self) -> TerminalState:
        self._enter("terminal")
        return TerminalState(
            connected=self.connected,
            trade_allowed=True,
            tradeapi_disabled=False,
            build=5430,
            ping_ms=Decimal("12.5"),
            company="Sim",
            name="MetaTrader 5",
        )

    def positions(self, *, symbol: str | None = None, ticket: int | None = None) -> Sequence[Position]:
        self._enter("positions")
        return tuple(self.open_positions)

    def deals(self, *, since: datetime, until: datetime) -> Sequence[Deal]:
        self._enter("deals")
        return tuple(self.history)

    def deals_for_position(self, *, position_id: int) -> Sequence[Deal]:
        self._enter("deals_for_position")
        if self.lagging and self.lag_calls > 0:
            self.lag_calls -= 1
        elif self.lagging:
            self.history.extend(self.lagging)
            self.lagging = []
        return tuple(deal for deal in self.history if deal.position_id == position_id)

    def symbol(self, name: str) -> SymbolSpec:
        self._enter("symbol")
        if name not in SYMBOLS:
            raise GatewayInvalidRequest("unknown symbol", call="symbol_info")
        return symbol_spec(name, *SYMBOLS[name])

    def tick(self, symbol: str) -> Tick:
        self._enter("tick")
        now = datetime.now(UTC)
        bid = Decimal("1.08500")
        return Tick(
            symbol=symbol,
            bid=bid,
            ask=bid + Decimal("0.00010"),
            last=Decimal(0),
            time=now,
            server_time=now.astimezone(SERVER_TZ),
            time_msc=int(now.timestamp() * 1000),
        )

    def bars(self, *, symbol: str, timeframe: int, count: int, start_pos: int = 0) -> Sequence[Bar]:
        self._enter("bars")
        return ()

    def timeout(self, call: str) -> None:
        self.fail[call] = GatewayTimeout("terminal did not answer in time", call=call)
