"""The EA protocol, version 1: every constant the server, the emulator and MT5Guard.mq5 must agree on, the signature
recipe, and the validation of a push. Pure Python; docs/EA-PROTOCOL.md is the prose of this module."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

PROTOCOL_VERSION = 1

PUSH_PATH = "/api/v1/ea/push/"
COMMANDS_PATH = "/api/v1/ea/commands/"
RESULT_PATH_TEMPLATE = "/api/v1/ea/commands/{id}/result/"

HEADER_KEY = "X-MT5G-Key"
HEADER_TIMESTAMP = "X-MT5G-Timestamp"
HEADER_NONCE = "X-MT5G-Nonce"
HEADER_SIGNATURE = "X-MT5G-Signature"
HEADERS = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024
MAX_POSITIONS = 1000
MAX_DEALS = 2000

# Field names of a push (JSON object); the .mq5 writes exactly these.
PUSH_FIELDS = (
    "protocol",
    "ea_version",
    "login",
    "server",
    "server_time",
    "account",
    "terminal",
    "positions",
    "deals",
    "ticks",
    "symbols",
)
ACCOUNT_FIELDS = (
    "balance",
    "credit",
    "profit",
    "equity",
    "margin",
    "margin_free",
    "margin_level",
    "margin_so_call",
    "margin_so_so",
    "leverage",
    "currency",
    "currency_digits",
    "margin_mode",
    "trade_allowed",
    "trade_expert",
    "name",
    "company",
)
TERMINAL_FIELDS = ("connected", "trade_allowed", "ping_last", "build")
POSITION_FIELDS = (
    "ticket",
    "time_msc",
    "type",
    "magic",
    "identifier",
    "reason",
    "volume",
    "price_open",
    "sl",
    "tp",
    "price_current",
    "swap",
    "profit",
    "symbol",
    "comment",
)
DEAL_FIELDS = (
    "ticket",
    "order",
    "time_msc",
    "type",
    "entry",
    "magic",
    "position_id",
    "reason",
    "volume",
    "price",
    "commission",
    "swap",
    "profit",
    "fee",
    "symbol",
    "comment",
)
TICK_FIELDS = ("time_msc", "bid", "ask", "digits", "point")
# The specification of each symbol held (what SymbolSpec needs); other symbol_info fields are not sent.
SYMBOL_FIELDS = (
    "digits",
    "point",
    "trade_tick_size",
    "trade_tick_value",
    "trade_contract_size",
    "volume_min",
    "volume_max",
    "volume_step",
    "trade_stops_level",
    "trade_freeze_level",
    "trade_mode",
    "trade_exemode",
    "trade_calc_mode",
    "filling_mode",
    "currency_base",
    "currency_profit",
    "currency_margin",
    "spread",
)
COMMAND_FIELDS = (
    "id",
    "action",
    "ticket",
    "symbol",
    "volume",
    "type",
    "magic",
    "deviation",
    "idempotency_key",
    "deadline",
)
RESULT_FIELDS = ("retcode", "deal", "order", "volume", "price", "comment")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(*, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """method, path, timestamp, nonce and the body's SHA-256 (hex), one per line (no trailing newline)."""
    return "\n".join((method.upper(), path, timestamp, nonce, body_digest(body)))


def sign(secret: str, *, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 of string_to_sign with the account's key secret, lower-case hex."""
    message = string_to_sign(method=method, path=path, timestamp=timestamp, nonce=nonce, body=body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, signature: str, **parts: Any) -> bool:
    return hmac.compare_digest(sign(secret, **parts), signature.lower())


class PayloadError(ValueError):
    """A push or result that does not follow the protocol; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Push:
    """A validated push: plain values, money and prices as Decimal, times as epoch milliseconds of the server clock."""

    ea_version: str
    login: int
    server: str
    server_time: int
    account: dict[str, Any]
    terminal: dict[str, Any]
    positions: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    ticks: dict[str, dict[str, Any]]
    symbols: dict[str, dict[str, Any]]


def _require(obj: Any, where: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: expected an object")
    missing = [name for name in fields if name not in obj]
    if missing:
        raise PayloadError(f"{where}: missing {', '.join(missing)}")
    return obj


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{where}: expected an integer")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PayloadError(f"{where}: expected a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{where}: expected a number") from exc
    if not number.is_finite():
        raise PayloadError(f"{where}: expected a finite number")
    return number


def _str(value: Any, where: str, *, max_length: int = 64) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise PayloadError(f"{where}: expected a string of at most {max_length} characters")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(f"{where}: expected true or false")
    return value


_ACCOUNT_TYPES = {
    "leverage": _int,
    "currency_digits": _int,
    "margin_mode": _int,
    "trade_allowed": _bool,
    "trade_expert": _bool,
    "currency": _str,
    "name": _str,
    "company": _str,
}
_TERMINAL_TYPES = {"connected": _bool, "trade_allowed": _bool, "ping_last": _int, "build": _int}
_ROW_INTS = {"ticket", "time_msc", "type", "magic", "identifier", "reason", "order", "entry", "position_id"}
_ROW_STRS = {"symbol", "comment", "currency_base", "currency_profit", "currency_margin"}
_SYMBOL_INTS = dict.fromkeys(
    (
        "digits",
        "trade_stops_level",
        "trade_freeze_level",
        "trade_mode",
        "trade_exemode",
        "trade_calc_mode",
        "filling_mode",
        "spread",
    ),
    _int,
)


def _typed(obj: dict[str, Any], where: str, fields: tuple[str, ...], types: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        kind = types.get(name)
        if kind is None:
            kind = _int if name in _ROW_INTS else _str if name in _ROW_STRS else _decimal
        out[name] = kind(obj[name], f"{where}.{name}")
    return out


def push_parse(body: bytes) -> Push:
    """Validate a push body (already authenticated). Raises PayloadError with the first problem found."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from exc
    data = _require(data, "push", PUSH_FIELDS)
    if data["protocol"] != PROTOCOL_VERSION:
        raise PayloadError(
            f"protocol: this server speaks version {PROTOCOL_VERSION}, got {data['protocol']!r}"
        )
    positions, deals, ticks = data["positions"], data["deals"], data["ticks"]
    if not isinstance(positions, list) or len(positions) > MAX_POSITIONS:
        raise PayloadError(f"positions: expected a list of at most {MAX_POSITIONS}")
    if not isinstance(deals, list) or len(deals) > MAX_DEALS:
        raise PayloadError(f"deals: expected a list of at most {MAX_DEALS}")
    for name in ("ticks", "symbols"):
        if not isinstance(data[name], dict) or len(data[name]) > MAX_POSITIONS:
            raise PayloadError(f"{name}: expected an object keyed by symbol")
    return Push(
        ea_version=_str(data["ea_version"], "ea_version", max_length=32),
        login=_int(data["login"], "login"),
        server=_str(data["server"], "server"),
        server_time=_int(data["server_time"], "server_time"),
        account=_typed(
            _require(data["account"], "account", ACCOUNT_FIELDS), "account", ACCOUNT_FIELDS, _ACCOUNT_TYPES
        ),
        terminal=_typed(
            _require(data["terminal"], "terminal", TERMINAL_FIELDS),
            "terminal",
            TERMINAL_FIELDS,
            _TERMINAL_TYPES,
        ),
        positions=[
            _typed(_require(row, f"positions[{i}]", POSITION_FIELDS), f"positions[{i}]", POSITION_FIELDS, {})
            for i, row in enumerate(positions)
        ],
        deals=[
            _typed(_require(row, f"deals[{i}]", DEAL_FIELDS), f"deals[{i}]", DEAL_FIELDS, {})
            for i, row in enumerate(deals)
        ],
        ticks={
            _str(symbol, "ticks key"): _typed(
                _require(row, f"ticks.{symbol}", TICK_FIELDS),
                f"ticks.{symbol}",
                TICK_FIELDS,
                {"digits": _int, "time_msc": _int},
            )
            for symbol, row in ticks.items()
        },
        symbols={
            _str(symbol, "symbols key"): _typed(
                _require(row, f"symbols.{symbol}", SYMBOL_FIELDS),
                f"symbols.{symbol}",
                SYMBOL_FIELDS,
                _SYMBOL_INTS,
            )
            for symbol, row in data["symbols"].items()
        },
    )


def result_parse(body: bytes) -> dict[str, Any]:
    """Validate a command result: what order_send returned in the terminal."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from exc
    data = _require(data, "result", RESULT_FIELDS)
    return {
        "retcode": _int(data["retcode"], "retcode"),
        "deal": _int(data["deal"], "deal"),
        "order": _int(data["order"], "order"),
        "volume": _decimal(data["volume"], "volume"),
        "price": _decimal(data["price"], "price"),
        "comment": _str(data["comment"], "comment", max_length=255),
    }
