"""Writes: edit the global risk configuration (a new immutable version), size a trade setup (a risk-log row)."""

import logging
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from guards.selectors import account_is_halted
from integrations.mt5.errors import GatewayError, GatewayInvalidRequest
from integrations.mt5.types import Side
from notifications.services import risk_config_changed_notify
from risk import sizing
from risk.models import RiskConfigVersion, TradeSetupRiskLog
from risk.selectors import RiskConfigMissing, risk_config_current, risk_config_invalidate_cache
from rules.selectors import account_rules_state_current

if TYPE_CHECKING:
    from integrations.mt5.gateway import Mt5Gateway

logger = logging.getLogger(__name__)


# Log reasons beyond the spec's rejection codes: the request reached the account but sizing could not run.
UNKNOWN_SYMBOL = "unknown_symbol"
TERMINAL_UNAVAILABLE = "terminal_unavailable"
INVALID_SYMBOL_TERMS = "invalid_symbol_terms"


class UnknownSymbol(ApplicationError):
    pass


class InvalidSymbolTerms(ApplicationError):
    pass


class TerminalUnavailable(ApplicationError):
    status_code = 503


class SetupRejected(ApplicationError):
    """The caller's setup itself is wrong (entries or stop): a 400 for the API, still logged."""


def _as_decimal(value: Any) -> Any:
    """Numbers and decimal text become Decimal; anything else is left for the validation to name."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return value
    return value


def risk_config_validate(
    *,
    risk_percent: Any,
    entry_splits: Any,
    margin_buffer_percent: Any,
    max_snapshot_age_seconds: Any,
    reason: str,
) -> dict[str, Any]:
    """The values of a new version, typed (Decimal, list of Decimal, int) and checked against the spec's ranges by
    the sizing module's own validation; raises ValidationError with one message per field. The admin form calls
    this too, so the API and the admin say the same thing."""
    values: dict[str, Any] = {
        "risk_percent": _as_decimal(risk_percent),
        "entry_splits": [_as_decimal(part) for part in entry_splits]
        if isinstance(entry_splits, list | tuple)
        else entry_splits,
        "margin_buffer_percent": _as_decimal(margin_buffer_percent),
        "max_snapshot_age_seconds": max_snapshot_age_seconds,
    }
    errors = {
        field: f"{field.replace('_', ' ').capitalize()} {message}."
        for field, message in sizing.validate_sizing_config(**values).items()
    }
    values["reason"] = (reason or "").strip()
    if not values["reason"]:
        errors["reason"] = "A reason is required: say why the configuration changes."
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    return values


@transaction.atomic
def risk_config_update(
    *,
    actor: User,
    reason: str,
    risk_percent: Decimal | None = None,
    entry_splits: Sequence[Decimal] | None = None,
    margin_buffer_percent: Decimal | None = None,
    max_snapshot_age_seconds: int | None = None,
) -> RiskConfigVersion:
    """Put a new configuration in force as version n+1; settings left as None keep their current value.

    Owners only. Invalid values raise ValidationError with one message per field and store nothing, so the current
    version stays in force. Concurrent edits are serialised on a lock of the root version (version 1), so each edit
    reads the version it replaces only once the previous edit has committed. The shared cache entry is deleted
    after commit, so every process reads the new version next."""
    if not actor.is_owner:
        raise PermissionDeniedError("Only an owner may change the risk configuration.")
    root = RiskConfigVersion.objects.select_for_update().filter(previous__isnull=True).first()
    current = RiskConfigVersion.objects.order_by("-version").first()
    if root is None or current is None:
        raise RiskConfigMissing()

    values = risk_config_validate(
        risk_percent=current.risk_percent if risk_percent is None else risk_percent,
        entry_splits=current.entry_splits if entry_splits is None else entry_splits,
        margin_buffer_percent=current.margin_buffer_percent
        if margin_buffer_percent is None
        else margin_buffer_percent,
        max_snapshot_age_seconds=current.max_snapshot_age_seconds
        if max_snapshot_age_seconds is None
        else max_snapshot_age_seconds,
        reason=reason,
    )
    entry_splits_text = [format(part.normalize(), "f") for part in values["entry_splits"]]
    if (
        values["risk_percent"] == current.risk_percent
        and [Decimal(p) for p in entry_splits_text] == [Decimal(p) for p in current.entry_splits]
        and values["margin_buffer_percent"] == current.margin_buffer_percent
        and values["max_snapshot_age_seconds"] == current.max_snapshot_age_seconds
    ):
        raise ApplicationError(
            "Nothing changed: these values are already in force.", extra={"version": current.version}
        )
    config = RiskConfigVersion(
        version=current.version + 1,
        previous=current,
        changed_by=actor,
        reason=values["reason"],
        risk_percent=values["risk_percent"],
        entry_splits=entry_splits_text,
        margin_buffer_percent=values["margin_buffer_percent"],
        max_snapshot_age_seconds=values["max_snapshot_age_seconds"],
    )
    config.full_clean()
    try:
        with transaction.atomic():
            config.save()
    except IntegrityError:
        raise ConflictError(
            "The risk configuration changed at the same moment; reload and try again."
        ) from None
    risk_config_changed_notify(config=config, previous=current, actor=actor)  # outbox rows, same transaction
    transaction.on_commit(risk_config_invalidate_cache)
    logger.info("risk configuration v%s by user %s: %s", config.version, actor.pk, config.values)
    return config


def _account_state(
    *, account: TradingAccount, headroom: Decimal | None = None
) -> tuple[sizing.AccountState | None, dict[str, Any]]:
    snapshot = account.latest_snapshot
    if snapshot is None:
        return None, {"snapshot_id": None}
    age = Decimal(str(round(snapshot.age_seconds, 3)))
    state = sizing.AccountState(
        currency=snapshot.currency,
        balance=snapshot.balance,
        equity=snapshot.equity,
        margin_free=snapshot.margin_free,
        snapshot_age_seconds=age,
        headroom=headroom,
    )
    return state, {
        "snapshot_id": snapshot.pk,
        "taken_at": snapshot.taken_at.isoformat(),
        "snapshot_age_seconds": str(age),
        "currency": snapshot.currency,
        "balance": str(snapshot.balance),
        "equity": str(snapshot.equity),
        "margin_free": str(snapshot.margin_free),
    }


def _symbol_terms(
    *, gateway: "Mt5Gateway", symbol: str, side: str, entries: Sequence[Decimal]
) -> sizing.SymbolTerms:
    spec = gateway.symbol(symbol)
    # One margin per lot for the whole setup, quoted at the highest entry: order_calc_margin never falls as the price
    # rises (price-proportional or price-independent in every calc mode, shared/mt5/REFERENCE.md §7), so this is
    # the largest any entry needs and the margin check never understates the setup. One terminal call, not three.
    margin_per_lot = gateway.margin_for(side=Side(side), symbol=symbol, volume=Decimal(1), price=max(entries))
    return sizing.SymbolTerms(
        name=spec.name,
        digits=spec.digits,
        point=spec.point,
        trade_tick_size=spec.trade_tick_size,
        trade_tick_value=spec.trade_tick_value,
        volume_min=spec.volume_min,
        volume_max=spec.volume_max,
        volume_step=spec.volume_step,
        margin_per_lot=margin_per_lot,
    )


def _symbol_inputs(terms: sizing.SymbolTerms) -> dict[str, Any]:
    return {
        name: str(getattr(terms, name))
        for name in (
            "point",
            "trade_tick_size",
            "trade_tick_value",
            "volume_min",
            "volume_max",
            "volume_step",
            "margin_per_lot",
        )
    } | {"name": terms.name, "digits": terms.digits}


def _raise_if_setup_wrong(
    *, result: sizing.SizingResult, side: str, splits: int, log: TradeSetupRiskLog
) -> None:
    """invalid_stop and invalid_setup are the caller's mistakes: a 400 naming the field (the row is kept)."""
    if result.reason == sizing.INVALID_STOP:
        field = "sl"
        message = (
            "For a buy the stop loss must be below every entry."
            if side == sizing.BUY
            else "For a sell the stop loss must be above every entry."
        )
    elif result.reason == sizing.INVALID_SETUP:
        field = "entries"
        message = (
            f"Give one entry or exactly {splits} entries (one per configured split), each a positive price."
            if splits > 1
            else "Give exactly one entry, a positive price (the configuration has one split)."
        )
    else:
        return
    raise SetupRejected(
        message, extra={"fields": {field: [message]}, "reason": result.reason, "log_id": log.pk}
    )


def trade_setup_size(
    *,
    account: TradingAccount,
    actor: User,
    symbol: str,
    side: str,
    entries: Sequence[Decimal],
    sl: Decimal,
    gateway: "Mt5Gateway | None" = None,
) -> TradeSetupRiskLog:
    """Size a setup on an account under the configuration in force and log the request (always, one row).

    Halted and stale accounts are rejected without asking the terminal (a stale snapshot usually means the link is
    down). Otherwise tick value and margin per lot come from the terminal (`gateway`, default the account's own).
    A rejection for the account's state is a result (approved=False); a wrong setup (entries, stop), a symbol the
    terminal does not know, unusable symbol terms or an unreachable terminal are logged and then raised."""
    config = risk_config_current()
    sizing_config = config.as_sizing_config()
    inputs: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "entries": [format(price, "f") for price in entries],
        "sl": format(sl, "f"),
    }
    rules_state = account_rules_state_current(account=account)
    close_only = rules_state is not None and rules_state.close_only
    headroom = None if rules_state is None else rules_state.headroom
    if rules_state is not None:
        inputs["rules"] = {
            "rule_set": account.rule_set_assignment.rule_set.name,
            "headroom": None if headroom is None else str(headroom),
            "close_only": close_only,
            "evaluated_snapshot_id": rules_state.last_snapshot_id,
        }
    state, inputs["account"] = _account_state(account=account, headroom=headroom)

    def log(result: sizing.SizingResult | None, reason: str) -> TradeSetupRiskLog:
        row = TradeSetupRiskLog(
            account=account,
            requested_by=actor,
            config=config,
            inputs=inputs,
            result=None if result is None else result.to_dict(),
            approved=result is not None and result.approved,
            reason=reason,
        )
        # Field checks only: the related rows are the ones in hand and the database enforces the keys and the
        # approved/reason constraint, so no existence or constraint queries on every request.
        row.full_clean(exclude=["account", "requested_by", "config"], validate_constraints=False)
        row.save()
        return row

    if account_is_halted(account=account):
        return log(sizing.SizingResult(approved=False, reason=sizing.ACCOUNT_HALTED), sizing.ACCOUNT_HALTED)
    if close_only:
        return log(sizing.SizingResult(approved=False, reason=sizing.CLOSE_ONLY), sizing.CLOSE_ONLY)
    if state is None or state.snapshot_age_seconds > sizing_config.max_snapshot_age_seconds:
        return log(sizing.SizingResult(approved=False, reason=sizing.STALE_ACCOUNT), sizing.STALE_ACCOUNT)

    try:
        if gateway is None:
            from accounts.selectors import trading_account_gateway

            gateway = trading_account_gateway(account=account)
        terms = _symbol_terms(gateway=gateway, symbol=symbol, side=side, entries=entries)
    except GatewayInvalidRequest as exc:
        row = log(None, UNKNOWN_SYMBOL)
        raise UnknownSymbol(
            f"The terminal of account {account} does not know the symbol {symbol!r}.",
            extra={
                "fields": {"symbol": [f"Unknown symbol {symbol!r} on this account's terminal."]},
                "reason": UNKNOWN_SYMBOL,
                "log_id": row.pk,
                "terminal": str(exc),
            },
        ) from exc
    except GatewayError as exc:
        row = log(None, TERMINAL_UNAVAILABLE)
        logger.warning("sizing on %s: terminal unavailable: %s", account, exc)
        raise TerminalUnavailable(
            f"The terminal of account {account} is not available ({exc.message}); try again shortly.",
            extra={"reason": TERMINAL_UNAVAILABLE, "log_id": row.pk, "error": type(exc).__name__},
        ) from exc
    inputs["symbol_terms"] = _symbol_inputs(terms)

    try:
        result = sizing.size_setup(
            account=state,
            config=sizing_config,
            symbol=terms,
            setup=sizing.Setup(side=side, entries=tuple(entries), sl=sl),
        )
    except sizing.InvalidSizingInput as exc:
        row = log(None, INVALID_SYMBOL_TERMS)
        raise InvalidSymbolTerms(
            f"The terminal reports unusable terms for {symbol!r} ({exc}); it cannot be sized now.",
            extra={"reason": INVALID_SYMBOL_TERMS, "log_id": row.pk, "terms": exc.errors},
        ) from exc
    row = log(result, result.reason or "")
    _raise_if_setup_wrong(result=result, side=side, splits=len(sizing_config.entry_splits), log=row)
    return row
