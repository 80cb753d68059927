"""The scenario file (shared/spec/guards.md "The scenario runner"): parsed and validated, with path-named errors.

Step actions of the spec: `prices`, `bot_trade`, `open`, `close`, `fault` (with `last_error` or `retcode`), `balance`,
`disconnect`, `market`. Ours (documented in docs/GUARDS.md):
* `fault` may give `retcode` instead of `last_error` (order_send answers that retcode, e.g. 10004 REQUOTE);
* `before_call`: {"call": "order_send", <one action>}: the action is applied inside the terminal just before the
  next call of `call` takes effect (a stop loss hit while our close is in flight);
* `concurrent_close`: {"ticket"|"comment", "requests": 10, "trigger_key": "..."}: that many threads ask auto-close
  for the same position at once;
* `reset`: {"reason": "...", "role": "support"|"owner", "confirm_open_positions": false}; `deposit`: {"amount": 500}; `feed`: {"symbol", "mode"};
  `settings`: {<guard setting>: value} (changes the global guard settings mid-run).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from guards.models import SETTING_FIELDS, GuardSettings

SPEC_ACTIONS = ("prices", "bot_trade", "open", "close", "fault", "balance", "disconnect", "market")
EXTRA_ACTIONS = ("before_call", "concurrent_close", "reset", "deposit", "feed", "settings", "size")
ACTIONS = SPEC_ACTIONS + EXTRA_ACTIONS
MARGIN_MODES = ("hedging", "netting", "exchange")
FAULT_CALLS = (
    "order_send", "order_check", "positions_get", "account_info", "symbol_info", "symbol_info_tick",
    "copy_rates_from_pos", "history_deals_get", "history_orders_get", "terminal_info", "initialize", "login",
)  # fmt: skip
MAX_UNTIL_SECONDS = 7 * 24 * 3600


class ScenarioError(ValueError):
    """The file is not a valid scenario; the message names the offending path."""


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    args: Any
    index: int


@dataclass(frozen=True)
class Scenario:
    login: int
    currency: str
    balance: Decimal
    leverage: int
    margin_mode: str
    symbols: dict[str, dict[str, Any]]
    guards: dict[str, Any]
    sync_interval_seconds: float
    until: float
    steps: list[Step]
    start: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    rules: Any = None  # rules.evaluation.RuleSet of the scenario's account (the `rules` key), or None
    rules_close_only_on_warning: bool = False


def _fail(path: str, message: str) -> ScenarioError:
    return ScenarioError(f"{path}: {message}")


def _number(value: Any, path: str, *, minimum: float | None = None, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(path, "must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _fail(path, "must be a number") from None
    if not number.is_finite():
        raise _fail(path, "must be a finite number")
    if positive and number <= 0:
        raise _fail(path, "must be greater than 0")
    if minimum is not None and number < Decimal(str(minimum)):
        raise _fail(path, f"must be at least {minimum}")
    return number


def _integer(value: Any, path: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, "must be a whole number")
    if minimum is not None and value < minimum:
        raise _fail(path, f"must be at least {minimum}")
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "must be a non-empty string")
    return value


def _side(value: Any, path: str) -> str:
    if value not in ("buy", "sell"):
        raise _fail(path, "must be 'buy' or 'sell'")
    return str(value)


def _position_ref(args: dict[str, Any], path: str) -> None:
    if ("ticket" in args) == ("comment" in args):
        raise _fail(path, "give exactly one of 'ticket' or 'comment'")
    if "ticket" in args:
        _integer(args["ticket"], f"{path}.ticket", minimum=1)
    else:
        _text(args["comment"], f"{path}.comment")


def _guard_settings(values: Any, path: str) -> dict[str, Any]:
    values = _object(values, path)
    unknown = sorted(set(values) - set(SETTING_FIELDS))
    if unknown:
        raise _fail(
            path, f"unknown guard setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_FIELDS)}"
        )
    row = GuardSettings(pk=1)
    for name, value in values.items():
        model_field = GuardSettings._meta.get_field(name)
        try:
            setattr(row, name, model_field.to_python(value) if value is not None else None)
        except ValidationError as exc:
            raise _fail(f"{path}.{name}", "; ".join(exc.messages)) from None
    try:
        row.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        first = next(iter(exc.message_dict.items()))
        raise _fail(f"{path}.{first[0]}", "; ".join(first[1])) from None
    return dict(values)


BALANCE_KINDS = ("balance", "credit", "bonus", "charge", "correction")
MAX_DISCONNECT_SECONDS = 24 * 3600


def _check_balance(args: Any, path: str) -> dict[str, Any]:
    """{"type": balance|credit|bonus|charge|correction, "amount": non-zero number, "comment": optional text}"""
    operation = _object(args, path)
    unknown = sorted(set(operation) - {"type", "amount", "comment"})
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; expected type, amount, comment")
    if operation.get("type") not in BALANCE_KINDS:
        raise _fail(f"{path}.type", f"must be one of {', '.join(BALANCE_KINDS)}")
    if "amount" not in operation:
        raise _fail(f"{path}.amount", "is required")
    if _number(operation["amount"], f"{path}.amount") == 0:
        raise _fail(f"{path}.amount", "must not be 0")
    if "comment" in operation and not isinstance(operation["comment"], str):
        raise _fail(f"{path}.comment", "must be a string")
    return operation


def _check_disconnect(args: Any, path: str) -> dict[str, Any]:
    """{"seconds": N > 0}: the terminal is off its trade server for that long."""
    disconnect = _object(args, path)
    unknown = sorted(set(disconnect) - {"seconds"})
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; expected seconds")
    if "seconds" not in disconnect:
        raise _fail(f"{path}.seconds", "is required")
    seconds = _number(disconnect["seconds"], f"{path}.seconds", positive=True)
    if seconds > MAX_DISCONNECT_SECONDS:
        raise _fail(f"{path}.seconds", f"must be at most {MAX_DISCONNECT_SECONDS}")
    return disconnect


def _check_market(args: Any, path: str) -> dict[str, Any]:
    """{"symbol": "EURUSD", "open": false}: the symbol's trading session closes (true: opens)."""
    market = _object(args, path)
    unknown = sorted(set(market) - {"symbol", "open"})
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; expected 'symbol' and 'open'")
    _text(market.get("symbol"), f"{path}.symbol")
    if not isinstance(market.get("open"), bool):
        raise _fail(f"{path}.open", "is required: true or false")
    return market


def _scenario_rules(raw: Any, start: datetime | None) -> tuple[Any, bool]:
    """The `rules` key: a rule set in the `rules_case` format (shared/spec/rules.md) for the scenario's account,
    plus `close_only_on_warning` (default false). `start` defaults to the scenario's start."""
    if raw is None:
        return None, False
    from integrations.mt5.simulated.clock import DEFAULT_VIRTUAL_START
    from rules.case_file import CaseFileError, rules_parse

    section = dict(_object(raw, "rules"))
    close_only = section.pop("close_only_on_warning", False)
    if not isinstance(close_only, bool):
        raise _fail("rules.close_only_on_warning", "must be true or false")
    try:
        return rules_parse(section, "rules", default_start=start or DEFAULT_VIRTUAL_START), close_only
    except CaseFileError as exc:
        raise ScenarioError(str(exc)) from None


def _check_action(action: str, args: Any, path: str, *, nested: bool = False) -> Any:
    if action == "size":
        setup = _object(args, path)
        _text(setup.get("symbol"), f"{path}.symbol")
        _side(setup.get("side"), f"{path}.side")
        entries = setup.get("entries")
        if not isinstance(entries, list) or not entries:
            raise _fail(f"{path}.entries", "must be a non-empty list of prices")
        for index, price in enumerate(entries):
            _number(price, f"{path}.entries[{index}]", positive=True)
        _number(setup.get("sl"), f"{path}.sl", positive=True)
        return setup
    if action == "balance":
        return _check_balance(args, path)
    if action == "disconnect":
        return _check_disconnect(args, path)
    if action == "prices":
        prices = _object(args, path)
        if not prices:
            raise _fail(path, "must name at least one symbol")
        for symbol, quote in prices.items():
            quote = _object(quote, f"{path}.{symbol}")
            if "bid" not in quote:
                raise _fail(f"{path}.{symbol}.bid", "is required")
            bid = _number(quote["bid"], f"{path}.{symbol}.bid", positive=True)
            if "ask" in quote and _number(quote["ask"], f"{path}.{symbol}.ask", positive=True) < bid:
                raise _fail(f"{path}.{symbol}.ask", "must not be below the bid")
        return prices
    if action == "bot_trade":
        trade = _object(args, path)
        for key in ("id", "symbol"):
            _text(trade.get(key), f"{path}.{key}")
        _side(trade.get("side"), f"{path}.side")
        _number(trade.get("volume"), f"{path}.volume", positive=True)
        _number(trade.get("entry_price"), f"{path}.entry_price", positive=True)
        for key in ("sl", "tp"):
            if trade.get(key) is not None:
                _number(trade[key], f"{path}.{key}", minimum=0)
        return trade
    if action == "open":
        order = _object(args, path)
        _text(order.get("symbol"), f"{path}.symbol")
        _side(order.get("side"), f"{path}.side")
        _number(order.get("volume"), f"{path}.volume", positive=True)
        for key in ("sl", "tp"):
            if order.get(key) is not None:
                _number(order[key], f"{path}.{key}", minimum=0)
        if "magic" in order:
            _integer(order["magic"], f"{path}.magic", minimum=0)
        if "comment" in order and not isinstance(order["comment"], str):
            raise _fail(f"{path}.comment", "must be a string")
        return order
    if action == "close":
        close = _object(args, path)
        _position_ref(close, path)
        return close
    if action == "market":
        return _check_market(args, path)
    if action == "fault":
        fault = _object(args, path)
        if fault.get("call") not in FAULT_CALLS:
            raise _fail(f"{path}.call", f"must be one of {', '.join(FAULT_CALLS)}")
        if ("last_error" in fault) == ("retcode" in fault):
            raise _fail(path, "give exactly one of 'last_error' or 'retcode'")
        if "last_error" in fault:
            error = fault["last_error"]
            if (
                not isinstance(error, list)
                or len(error) != 2
                or isinstance(error[0], bool)
                or not isinstance(error[0], int)
                or not isinstance(error[1], str)
            ):
                raise _fail(f"{path}.last_error", 'must be [code, description], e.g. [-10005, "IPC timeout"]')
        else:
            if fault["call"] not in ("order_send", "order_check"):
                raise _fail(f"{path}.retcode", "applies to order_send and order_check only")
            _integer(fault["retcode"], f"{path}.retcode", minimum=0)
        _integer(fault.get("times", 1), f"{path}.times", minimum=1)
        if not isinstance(fault.get("executed", False), bool):
            raise _fail(f"{path}.executed", "must be true or false")
        return fault
    if nested:
        raise _fail(path, f"cannot be used inside before_call (use one of {', '.join(SPEC_ACTIONS)})")
    if action == "before_call":
        hook = _object(args, path)
        if hook.get("call") not in FAULT_CALLS:
            raise _fail(f"{path}.call", f"must be one of {', '.join(FAULT_CALLS)}")
        inner = [k for k in hook if k != "call"]
        if len(inner) != 1 or inner[0] not in SPEC_ACTIONS:
            raise _fail(path, f"needs 'call' and exactly one action of {', '.join(SPEC_ACTIONS)}")
        _check_action(inner[0], hook[inner[0]], f"{path}.{inner[0]}", nested=True)
        return hook
    if action == "concurrent_close":
        request = _object(args, path)
        _position_ref({k: v for k, v in request.items() if k in ("ticket", "comment")}, path)
        _integer(request.get("requests", 10), f"{path}.requests", minimum=1)
        if request.get("requests", 10) > 64:
            raise _fail(f"{path}.requests", "must be at most 64")
        if "trigger_key" in request:
            _text(request["trigger_key"], f"{path}.trigger_key")
        return request
    if action == "reset":
        reset = _object(args, path)
        _text(reset.get("reason"), f"{path}.reason")
        if reset.get("role", "support") not in ("support", "owner"):
            raise _fail(f"{path}.role", "must be 'support' or 'owner'")
        if not isinstance(reset.get("confirm_open_positions", False), bool):
            raise _fail(f"{path}.confirm_open_positions", "must be true or false")
        return reset
    if action == "deposit":
        deposit = _object(args, path)
        if _number(deposit.get("amount"), f"{path}.amount") == 0:
            raise _fail(f"{path}.amount", "must not be 0")
        return deposit
    if action == "feed":
        feed = _object(args, path)
        _text(feed.get("symbol"), f"{path}.symbol")
        if feed.get("mode") not in ("walk", "flat", "frozen"):
            raise _fail(f"{path}.mode", "must be 'walk', 'flat' or 'frozen'")
        return feed
    if action == "settings":
        return _guard_settings(args, path)
    raise _fail(path, f"unknown action; expected one of {', '.join(ACTIONS)}")  # pragma: no cover


def scenario_parse(text: str) -> Scenario:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON: {exc}") from None
    data = _object(data, "$")
    known = {
        "account",
        "symbols",
        "config",
        "sync_interval_seconds",
        "until",
        "steps",
        "start",
        "name",
        "description",
        "rules",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail("$", f"unknown key(s) {', '.join(unknown)}")
    account = _object(data.get("account"), "account")
    login = _integer(account.get("login"), "account.login", minimum=1)
    currency = account.get("currency", "USD")
    if not isinstance(currency, str) or not currency.isalpha() or len(currency) > 8:
        raise _fail("account.currency", "must be a currency code such as USD")
    balance = _number(account.get("balance", 10_000), "account.balance", minimum=0)
    leverage = _integer(account.get("leverage", 100), "account.leverage", minimum=1)
    margin_mode = account.get("margin_mode", "hedging")
    if margin_mode not in MARGIN_MODES:
        raise _fail("account.margin_mode", f"must be one of {', '.join(MARGIN_MODES)}")
    symbols = _object(data.get("symbols", {}), "symbols")
    for name, spec in symbols.items():
        _object(spec, f"symbols.{name}")
    config = _object(data.get("config", {}), "config")
    unknown_config = sorted(set(config) - {"guards"})
    if unknown_config:
        raise _fail("config", f"unknown key(s) {', '.join(unknown_config)}; expected 'guards'")
    guards = _guard_settings(config.get("guards", {}), "config.guards")
    interval = float(_number(data.get("sync_interval_seconds", 10), "sync_interval_seconds", positive=True))
    if "until" not in data:
        raise _fail("until", "is required")
    until = float(_number(data["until"], "until", minimum=0))
    if until > MAX_UNTIL_SECONDS:
        raise _fail("until", f"must be at most {MAX_UNTIL_SECONDS}")
    start = None
    if "start" in data:
        try:
            start = datetime.fromisoformat(_text(data["start"], "start"))
        except ValueError:
            raise _fail("start", "must be an ISO 8601 date-time with a UTC offset") from None
        if start.tzinfo is None:
            raise _fail("start", "must carry a UTC offset, e.g. 2026-03-02T07:00:00+00:00")
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list):
        raise _fail("steps", "must be a list")
    steps = []
    for index, raw in enumerate(raw_steps):
        path = f"steps[{index}]"
        raw = _object(raw, path)
        if "at" not in raw:
            raise _fail(f"{path}.at", "is required")
        at = float(_number(raw["at"], f"{path}.at", minimum=0))
        if at > until:
            raise _fail(f"{path}.at", f"is after 'until' ({until:g})")
        actions = [k for k in raw if k != "at"]
        if len(actions) != 1:
            raise _fail(path, f"needs 'at' and exactly one action of {', '.join(ACTIONS)}")
        action = actions[0]
        if action not in ACTIONS:
            raise _fail(f"{path}.{action}", f"unknown action; expected one of {', '.join(ACTIONS)}")
        steps.append(
            Step(
                at=at, action=action, args=_check_action(action, raw[action], f"{path}.{action}"), index=index
            )
        )
    rules, close_only = _scenario_rules(data.get("rules"), start)
    return Scenario(
        rules=rules,
        rules_close_only_on_warning=close_only,
        login=login,
        currency=currency,
        balance=balance,
        leverage=leverage,
        margin_mode=margin_mode,
        symbols=symbols,
        guards=guards,
        sync_interval_seconds=interval,
        until=until,
        steps=steps,
        start=start,
        raw=data,
    )
