"""The gateway's error taxonomy. Every terminal failure surfaces as one of these, carrying the MT5 last_error code.

Nothing here ever includes credentials in its message.
"""


class GatewayError(Exception):
    """A terminal call failed. `code`/`description` are MT5's last_error() when there was one."""

    retryable = False

    def __init__(
        self, message: str, *, code: int | None = None, description: str = "", call: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.description = description
        self.call = call

    def __str__(self) -> str:
        where = f" in {self.call}" if self.call else ""
        code = f" (last_error {self.code}, {self.description!r})" if self.code is not None else ""
        return f"{self.message}{where}{code}"


class GatewayUnavailable(GatewayError):
    """No link to the terminal (not initialised, terminal closed, IPC/bridge down). Retry after reconnecting."""

    retryable = True


class GatewayTimeout(GatewayUnavailable):
    """The terminal did not answer in time. The call MAY have taken effect: reconcile before repeating a trade."""


class GatewayAuthFailed(GatewayError):
    """The terminal refused the login (wrong password/server, OTP accounts) or logged into another account."""


class GatewayInvalidRequest(GatewayError):
    """Bad arguments or an unknown symbol/ticket: a bug or bad input, never retried."""


class GatewayTradingDisabled(GatewayError):
    """Trading through the API is switched off (terminal Algo Trading, API disabled, account read-only)."""


class GatewayVersionMismatch(GatewayError):
    """Terminal and Python module versions are incompatible."""


class GatewayCircuitOpen(GatewayUnavailable):
    """The account's circuit breaker is open after repeated failures; no call was made."""
