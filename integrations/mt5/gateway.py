"""The port: what the domain may ask of a terminal. One implementation (TerminalGateway) serves every backend."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from integrations.mt5.types import (
    AccountState,
    Bar,
    Deal,
    Health,
    OrderCheck,
    OrderResult,
    Position,
    Side,
    SymbolSpec,
    TerminalState,
    Tick,
    TradeRequest,
)


class Mt5Gateway(Protocol):
    def connect(self) -> None:
        """Initialise and log in; verify account_info().login. Raises GatewayAuthFailed / GatewayUnavailable."""

    def close(self) -> None: ...

    def account(self) -> AccountState: ...

    def terminal(self) -> TerminalState: ...

    def positions(self, *, symbol: str | None = None, ticket: int | None = None) -> Sequence[Position]: ...

    def deals(self, *, since: datetime, until: datetime) -> Sequence[Deal]: ...

    def deals_for_position(self, *, position_id: int) -> Sequence[Deal]: ...

    def symbol(self, name: str) -> SymbolSpec: ...

    def tick(self, symbol: str) -> Tick: ...

    def bars(self, *, symbol: str, timeframe: int, count: int, start_pos: int = 0) -> Sequence[Bar]: ...

    def margin_for(self, *, side: Side, symbol: str, volume: Decimal, price: Decimal) -> Decimal: ...

    def profit_for(
        self, *, side: Side, symbol: str, volume: Decimal, price_open: Decimal, price_close: Decimal
    ) -> Decimal: ...

    def order_check(self, request: TradeRequest) -> OrderCheck: ...

    def order_send(self, request: TradeRequest) -> OrderResult:
        """Send once. Returns the terminal's result (any retcode); raises GatewayTimeout/GatewayUnavailable when
        order_send returned None with an IPC error: then the outcome is unknown and must be reconciled."""

    def health(self) -> Health: ...
