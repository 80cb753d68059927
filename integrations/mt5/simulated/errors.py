"""Error vocabulary of the simulated terminal: last_error() pairs and trade-server retcode comments.

Two kinds of failure, as in the real module:
* `ApiError(code, description)`: a *local* failure (bad arguments, no IPC link, unknown symbol, wrong password). The
  call returns None (False for bool functions) and last_error() reports the pair.
* `TradeReject(retcode)`: the trade server refused the request. order_send/order_check still return a result
  object, with that retcode, its comment and zeroed fields.
"""

from integrations.mt5 import constants as c

SUCCESS = (c.RES_S_OK, "Success")
NO_IPC = (c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
IPC_TIMEOUT = (c.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
CALL_FAILED = (c.RES_E_FAIL, "Terminal: Call failed")
INVALID_ARGUMENTS = (c.RES_E_INVALID_PARAMS, "Invalid arguments")
INVALID_PARAMS = (c.RES_E_INVALID_PARAMS, "Terminal: Invalid params")
UNNAMED_NOT_ALLOWED = (c.RES_E_INVALID_PARAMS, "Unnamed arguments not allowed")
NOT_FOUND = (c.RES_E_NOT_FOUND, "Terminal: Not found")
AUTH_FAILED = (c.RES_E_AUTH_FAILED, "Terminal: Authorization failed")
API_TRADING_DISABLED = (c.RES_E_AUTO_TRADING_DISABLED, "Auto-Trading using Python API disabled in Terminal")


def invalid_argument(name: str) -> tuple[int, str]:
    return (c.RES_E_INVALID_PARAMS, f'Invalid "{name}" argument')


class ApiError(Exception):
    def __init__(self, error: tuple[int, str]) -> None:
        self.code, self.description = error
        super().__init__(f"({self.code}, {self.description!r})")

    @property
    def pair(self) -> tuple[int, str]:
        return (self.code, self.description)


RETCODE_COMMENTS: dict[int, str] = {
    c.TRADE_RETCODE_REQUOTE: "Requote",
    c.TRADE_RETCODE_REJECT: "Request rejected",
    c.TRADE_RETCODE_CANCEL: "Request canceled by trader",
    c.TRADE_RETCODE_PLACED: "Request executed",
    c.TRADE_RETCODE_DONE: "Request executed",
    c.TRADE_RETCODE_DONE_PARTIAL: "Request executed partially",
    c.TRADE_RETCODE_ERROR: "Request processing error",
    c.TRADE_RETCODE_TIMEOUT: "Request canceled by timeout",
    c.TRADE_RETCODE_INVALID: "Invalid request",
    c.TRADE_RETCODE_INVALID_VOLUME: "Invalid volume",
    c.TRADE_RETCODE_INVALID_PRICE: "Invalid price",
    c.TRADE_RETCODE_INVALID_STOPS: "Invalid stops",
    c.TRADE_RETCODE_TRADE_DISABLED: "Trade disabled",
    c.TRADE_RETCODE_MARKET_CLOSED: "Market closed",
    c.TRADE_RETCODE_NO_MONEY: "No money",
    c.TRADE_RETCODE_PRICE_CHANGED: "Prices changed",
    c.TRADE_RETCODE_PRICE_OFF: "Off quotes",
    c.TRADE_RETCODE_INVALID_EXPIRATION: "Invalid expiration",
    c.TRADE_RETCODE_ORDER_CHANGED: "Order state changed",
    c.TRADE_RETCODE_TOO_MANY_REQUESTS: "Too frequent requests",
    c.TRADE_RETCODE_NO_CHANGES: "No changes",
    c.TRADE_RETCODE_SERVER_DISABLES_AT: "AutoTrading disabled by server",
    c.TRADE_RETCODE_CLIENT_DISABLES_AT: "AutoTrading disabled by client",
    c.TRADE_RETCODE_LOCKED: "Request locked for processing",
    c.TRADE_RETCODE_FROZEN: "Order or position frozen",
    c.TRADE_RETCODE_INVALID_FILL: "Unsupported filling mode",
    c.TRADE_RETCODE_CONNECTION: "No connection with the trade server",
    c.TRADE_RETCODE_ONLY_REAL: "Operation is allowed only for live accounts",
    c.TRADE_RETCODE_LIMIT_ORDERS: "The number of pending orders has reached the limit",
    c.TRADE_RETCODE_LIMIT_VOLUME: "The volume of orders and positions for the symbol has reached the limit",
    c.TRADE_RETCODE_INVALID_ORDER: "Incorrect or prohibited order type",
    c.TRADE_RETCODE_POSITION_CLOSED: "Position already closed",
    c.TRADE_RETCODE_INVALID_CLOSE_VOLUME: "Close volume exceeds the current position volume",
    c.TRADE_RETCODE_CLOSE_ORDER_EXIST: "A close order already exists for the position",
    c.TRADE_RETCODE_LIMIT_POSITIONS: "The number of open positions has reached the limit",
    c.TRADE_RETCODE_REJECT_CANCEL: "The pending order activation request is rejected, the order is canceled",
    c.TRADE_RETCODE_LONG_ONLY: "Only long positions are allowed",
    c.TRADE_RETCODE_SHORT_ONLY: "Only short positions are allowed",
    c.TRADE_RETCODE_CLOSE_ONLY: "Only position closing is allowed",
    c.TRADE_RETCODE_FIFO_CLOSE: "Position closing is allowed only by FIFO rule",
}


def retcode_comment(retcode: int) -> str:
    return RETCODE_COMMENTS.get(retcode, "Request rejected")


class TradeReject(Exception):
    """The trade server refused a request."""

    def __init__(self, retcode: int, comment: str | None = None) -> None:
        self.retcode = retcode
        self.comment = comment or retcode_comment(retcode)
        super().__init__(f"{retcode} {self.comment}")
