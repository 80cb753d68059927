"""Changing guard settings: global or per-account override, every changed field kept with who, when, old, new."""

from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, PermissionDeniedError
from guards.clock import guard_now
from guards.models import (
    GLOBAL_ONLY_FIELDS,
    GLOBAL_SETTINGS_PK,
    SETTING_FIELDS,
    AccountGuardSettings,
    GuardSettings,
    GuardSettingsChange,
)

OVERRIDE_ONLY_FIELDS = ("daily_loss_enabled",)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _coerce(model_field: Any, value: Any) -> Any:
    if value is None or value == "":
        return None
    return model_field.to_python(value)


@transaction.atomic
def guard_settings_update(
    *,
    actor: User | None,
    values: dict[str, Any],
    account: TradingAccount | None = None,
    reason: str = "",
) -> GuardSettings | AccountGuardSettings:
    """Apply `values` to the global settings (account=None) or to the account's override (None/"" = inherit).

    `actor=None` is the system itself (data migrations, the scenario runner's throw-away database)."""
    model: type[GuardSettings] | type[AccountGuardSettings]
    if account is None:
        model, permission = GuardSettings, "guards.change_guardsettings"
        row: GuardSettings | AccountGuardSettings = GuardSettings.objects.select_for_update().get_or_create(
            pk=GLOBAL_SETTINGS_PK
        )[0]
        allowed = set(SETTING_FIELDS) | set(GLOBAL_ONLY_FIELDS)
    else:
        model, permission = AccountGuardSettings, "guards.change_accountguardsettings"
        row = AccountGuardSettings.objects.select_for_update().get_or_create(account=account)[0]
        allowed = set(SETTING_FIELDS) | set(OVERRIDE_ONLY_FIELDS)
    if actor is not None and not (actor.is_superuser or actor.has_perm(permission)):
        raise PermissionDeniedError("Only owners may change guard settings.")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ApplicationError(
            f"Unknown guard settings: {', '.join(unknown)}.", extra={"fields": {"unknown": unknown}}
        )
    now = guard_now()
    changes = []
    for name, raw in values.items():
        model_field = model._meta.get_field(name)
        new = _coerce(model_field, raw) if account is not None else model_field.to_python(raw)
        old = getattr(row, name)
        if old != new:
            setattr(row, name, new)
            changes.append(
                GuardSettingsChange(
                    account=account,
                    field=name,
                    old_value=_jsonable(old),
                    new_value=_jsonable(new),
                    changed_by=actor,
                    changed_at=now,
                    reason=reason[:255],
                )
            )
    if not changes:
        return row
    row.full_clean(exclude=["account"])
    row.save()
    GuardSettingsChange.objects.bulk_create(changes)
    return row
