"""Writes: create and edit rule sets (each edit a `RuleSetChange`), assign a rule set to an account (each change an
`AccountRuleSetChange`). Owners only; every write needs a reason; invalid values store nothing."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from core.readcache import account_reads_invalidate
from rules import evaluation
from rules.models import (
    TERM_FIELDS,
    AccountRuleSet,
    AccountRuleSetChange,
    RuleSet,
    RuleSetChange,
    RuleSetKind,
)
from rules.presets import PRESETS

logger = logging.getLogger(__name__)

# rules.evaluation's error keys → our field names
_EVALUATION_FIELDS = {
    "timezone": "timezone",
    "daily_loss.percent": "daily_loss_percent",
    "daily_loss.of": "daily_loss_of",
    "daily_loss.base": "daily_loss_base",
    "max_loss.percent": "max_loss_percent",
    "max_loss.mode": "max_loss_mode",
    "max_loss.lock_at_initial": "max_loss_lock_at_initial",
    "profit_target.percent": "profit_target_percent",
    "min_trading_days": "min_trading_days",
    "best_day_percent": "best_day_percent",
    "warn_at_percent_used": "warn_at_percent_used",
}
_DECIMAL_FIELDS = (
    "daily_loss_percent",
    "max_loss_percent",
    "profit_target_percent",
    "best_day_percent",
    "warn_at_percent_used",
)
_KINDS = tuple(RuleSetKind.values)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _as_decimal(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        text = str(value).strip()
        if text == "":
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            return value
    return value


def _require_owner(actor: User) -> None:
    if not actor.is_owner:
        raise PermissionDeniedError("Only an owner may change rule sets and their assignments.")


def _require_reason(reason: str, errors: dict[str, str]) -> str:
    text = (reason or "").strip()
    if not text:
        errors["reason"] = "A reason is required: say why."
    return text


def rule_set_validate(values: dict[str, Any]) -> dict[str, Any]:
    """The terms typed (Decimal, int, bool, text) and checked; raises ValidationError with one message per field
    (our field names). Decimal, range and choice checks are the evaluation's own (`validate_rule_terms`)."""
    typed = dict(values)
    errors: dict[str, str] = {}
    for name in _DECIMAL_FIELDS:
        if name in typed:
            typed[name] = _as_decimal(typed[name])
            if typed[name] is not None and not isinstance(typed[name], Decimal):
                errors[name] = "Must be a number."
    kind = typed.get("kind", RuleSetKind.LIMITS)
    if kind not in _KINDS:
        errors["kind"] = f"Must be one of {', '.join(_KINDS)} (got {kind!r})."
    reset_time = typed.get("reset_time", "00:00")
    try:
        evaluation.parse_reset_time(reset_time)
    except ValueError as exc:
        errors["reset_time"] = f"Reset time {exc}."
    if "name" in typed:
        typed["name"] = str(typed["name"] or "").strip()
        if not typed["name"]:
            errors["name"] = "A name is required."
    warn = typed.get("warn_at_percent_used", evaluation.DEFAULT_WARN_AT_PERCENT_USED)
    terms = evaluation.validate_rule_terms(
        initial_balance=Decimal(1),
        timezone=typed.get("timezone", "UTC"),
        daily_loss=None
        if typed.get("daily_loss_percent") is None
        else evaluation.DailyLoss(
            percent=typed["daily_loss_percent"],
            of=typed.get("daily_loss_of", evaluation.OF_INITIAL),
            base=typed.get("daily_loss_base", evaluation.BASE_BALANCE),
        ),
        max_loss=None
        if typed.get("max_loss_percent") is None
        else evaluation.MaxLoss(
            percent=typed["max_loss_percent"],
            mode=typed.get("max_loss_mode", evaluation.MODE_STATIC),
            lock_at_initial=typed.get("max_loss_lock_at_initial", True),
        ),
        profit_target_percent=typed.get("profit_target_percent"),
        min_trading_days=typed.get("min_trading_days", 0),
        best_day_percent=typed.get("best_day_percent"),
        warn_at_percent_used=warn,
    )
    for key, message in terms.items():
        name = _EVALUATION_FIELDS.get(key, key)
        errors.setdefault(name, f"{_label(name)} {message}.")
    # A mode/base/of is checked even while its limit is off: a typo must not wait for the limit to be switched on.
    for name, allowed in (
        ("daily_loss_of", evaluation.DAILY_OF),
        ("daily_loss_base", evaluation.DAILY_BASES),
        ("max_loss_mode", evaluation.MAX_LOSS_MODES),
    ):
        if name in typed and typed[name] not in allowed:
            errors.setdefault(
                name, f"{_label(name)} must be one of {', '.join(allowed)} (got {typed[name]!r})."
            )
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    return typed


def _full_clean(row: RuleSet) -> None:
    try:
        row.full_clean(exclude=["preset"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


@transaction.atomic
def rule_set_create(
    *,
    actor: User | None,
    name: str,
    reason: str,
    preset: str | None = None,
    description: str | None = None,
    **terms: Any,
) -> RuleSet:
    """A new rule set: the preset's terms (if any) overridden by `terms`. `actor=None` is the system (migrations,
    the scenario runner)."""
    if actor is not None:
        _require_owner(actor)
    errors: dict[str, str] = {}
    unknown = sorted(set(terms) - set(TERM_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown rule-set fields: {', '.join(unknown)}.", extra={"fields": {"unknown": unknown}}
        )
    base: dict[str, Any] = {}
    if preset:
        if preset not in PRESETS:
            raise ValidationError({"preset": [f"Unknown preset {preset!r}; one of {', '.join(PRESETS)}."]})
        base = {key: value for key, value in PRESETS[preset].items() if key in TERM_FIELDS}
        if description is None:
            description = PRESETS[preset]["description"]
    reason_text = _require_reason(reason, errors)
    try:
        values = rule_set_validate(base | terms | {"name": name})
    except ValidationError as exc:
        raise ValidationError(exc.message_dict | {k: [v] for k, v in errors.items()}) from None
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    if RuleSet.objects.filter(name__iexact=values["name"]).exists():
        raise ValidationError({"name": [f"A rule set named {values['name']!r} exists already."]})
    row = RuleSet(name=values.pop("name"), description=description or "", preset=preset or "", revision=1)
    for field, value in values.items():
        setattr(row, field, value)
    _full_clean(row)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise ConflictError("A rule set with this name was created at the same moment.") from None
    RuleSetChange.objects.create(
        rule_set=row,
        revision=1,
        old=None,
        new=row.terms,
        changed_by=actor,
        changed_at=timezone.now(),
        reason=reason_text,
    )
    logger.info("rule set %s created by %s", row.pk, getattr(actor, "pk", None))
    return row


@transaction.atomic
def rule_set_update(*, actor: User, rule_set: RuleSet, reason: str, **changes: Any) -> RuleSet:
    """Change some terms (or the name, description) of a rule set: a new revision with one change row. Accounts
    under it use the new terms from their next snapshot."""
    _require_owner(actor)
    allowed = set(TERM_FIELDS) | {"name", "description"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ApplicationError(
            f"Unknown rule-set fields: {', '.join(unknown)}.", extra={"fields": {"unknown": unknown}}
        )
    row = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
    errors: dict[str, str] = {}
    reason_text = _require_reason(reason, errors)
    current = {field: getattr(row, field) for field in TERM_FIELDS} | {"name": row.name}
    try:
        values = rule_set_validate(current | {k: v for k, v in changes.items() if k != "description"})
    except ValidationError as exc:
        raise ValidationError(exc.message_dict | {k: [v] for k, v in errors.items()}) from None
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    old = row.terms
    if (
        values["name"] != row.name
        and RuleSet.objects.filter(name__iexact=values["name"]).exclude(pk=row.pk).exists()
    ):
        raise ValidationError({"name": [f"A rule set named {values['name']!r} exists already."]})
    for field, value in values.items():
        setattr(row, field, value)
    if changes.get("description") is not None:
        row.description = str(changes["description"])
    _full_clean(row)
    new = row.terms
    if new == old:
        raise ApplicationError(
            "Nothing changed: these terms are already in force.", extra={"revision": row.revision}
        )
    row.revision += 1
    row.save()
    RuleSetChange.objects.create(
        rule_set=row,
        revision=row.revision,
        old=old,
        new=new,
        changed_by=actor,
        changed_at=timezone.now(),
        reason=reason_text,
    )
    rule_set.refresh_from_db()
    logger.info("rule set %s r%s by %s", row.pk, row.revision, actor.pk)
    return row


def _aware(value: Any, errors: dict[str, str]) -> datetime | None:
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        try:
            value = parse_datetime(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        errors["start"] = "Start must be a date and time with a zone, e.g. 2026-03-02T07:00:00Z."
        return None
    return value


@transaction.atomic
def account_rule_set_assign(
    *,
    actor: User | None,
    account: TradingAccount,
    rule_set: RuleSet,
    initial_balance: Any,
    reason: str,
    start: Any = None,
) -> AccountRuleSet:
    """Put `account` under `rule_set` with its initial balance and start (default: now), or change either.
    Recorded as a change row; applies from the account's next snapshot. `actor=None` is the system."""
    if actor is not None:
        _require_owner(actor)
    errors: dict[str, str] = {}
    reason_text = _require_reason(reason, errors)
    balance = _as_decimal(initial_balance)
    if not isinstance(balance, Decimal) or not balance.is_finite() or balance <= 0:
        errors["initial_balance"] = "Initial balance must be a positive number."
    moment = timezone.now() if start is None else _aware(start, errors)
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    current = (
        AccountRuleSet.objects.select_for_update().select_related("rule_set").filter(account=account).first()
    )
    old = None if current is None else current.terms
    row = current or AccountRuleSet(account=account, revision=0)
    row.rule_set = rule_set
    row.initial_balance = balance
    row.start = moment
    row.assigned_by = actor
    row.assigned_at = timezone.now()
    try:
        row.full_clean(exclude=["account", "rule_set", "assigned_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    new = row.terms
    if old == new:
        raise ApplicationError("Nothing changed: the account is already under these terms.")
    row.revision += 1
    row.save()
    account_reads_invalidate(account_id=account.pk)  # the cached guard summary shows the rule set
    AccountRuleSetChange.objects.create(
        account=account,
        revision=row.revision,
        old=old,
        new=new,
        changed_by=actor,
        changed_at=row.assigned_at,
        reason=reason_text,
    )
    logger.info(
        "account %s under rule set %s (r%s) by %s",
        account.pk,
        rule_set.pk,
        row.revision,
        getattr(actor, "pk", None),
    )
    return row


def rule_set_terms_of(rules: evaluation.RuleSet) -> dict[str, Any]:
    """The model terms of a pure rule set (a case file's or a scenario's `rules`)."""
    daily, max_loss = rules.daily_loss, rules.max_loss
    return {
        "kind": RuleSetKind.LIMITS,
        "timezone": rules.timezone,
        "reset_time": rules.reset_time.strftime("%H:%M"),
        "daily_loss_percent": None if daily is None else daily.percent,
        "daily_loss_of": evaluation.OF_INITIAL if daily is None else daily.of,
        "daily_loss_base": evaluation.BASE_BALANCE if daily is None else daily.base,
        "max_loss_percent": None if max_loss is None else max_loss.percent,
        "max_loss_mode": evaluation.MODE_STATIC if max_loss is None else max_loss.mode,
        "max_loss_lock_at_initial": True if max_loss is None else max_loss.lock_at_initial,
        "profit_target_percent": rules.profit_target_percent,
        "min_trading_days": rules.min_trading_days,
        "best_day_percent": rules.best_day_percent,
        "warn_at_percent_used": rules.warn_at_percent_used,
    }
