"""The MT5 terminal gateway: the only code that knows a MetaTrader 5 terminal exists.

Use `get_gateway(ConnectionConfig(...))` to obtain an `Mt5Gateway`; everything it returns is one of our frozen
types (Decimal money and prices, aware UTC datetimes) and everything that fails raises a `GatewayError`.
"""

from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayCircuitOpen,
    GatewayError,
    GatewayInvalidRequest,
    GatewayTimeout,
    GatewayTradingDisabled,
    GatewayUnavailable,
    GatewayVersionMismatch,
)
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.selection import ConnectionConfig, get_gateway, reset_gateways
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.terminal import TerminalGateway
from integrations.mt5.types import (
    AccountState,
    Bar,
    Deal,
    Health,
    MarginMode,
    OrderCheck,
    OrderResult,
    Position,
    Side,
    SymbolSpec,
    TerminalState,
    Tick,
    TradeRequest,
)

__all__ = [
    "AccountState",
    "Bar",
    "ConnectionConfig",
    "Deal",
    "GatewayAuthFailed",
    "GatewayCircuitOpen",
    "GatewayError",
    "GatewayInvalidRequest",
    "GatewayTimeout",
    "GatewayTradingDisabled",
    "GatewayUnavailable",
    "GatewayVersionMismatch",
    "Health",
    "ManagedGateway",
    "MarginMode",
    "Mt5Gateway",
    "OrderCheck",
    "OrderResult",
    "Position",
    "Side",
    "SymbolSpec",
    "TerminalGateway",
    "TerminalState",
    "Tick",
    "TradeRequest",
    "get_gateway",
    "reset_gateways",
]
