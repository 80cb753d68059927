"""Reads: the risk configuration in force, its history, and which accounts a user may size.

`risk_config_current()` is read on every sizing request, so the current version is cached in the shared cache
(Redis), never in a module-level variable: every web process and worker reads the same entry, and
`risk_config_update` deletes it after its transaction commits, so the next read anywhere goes to the database.
A reader that missed the cache fills it with `cache.add` (never overwriting), and the entry expires after
CONFIG_CACHE_SECONDS as a backstop for the one race left (a reader that loaded the old row just before an edit
committed and stores it just after the edit deleted the entry).
"""

from typing import Any

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_list_for_user
from core.exceptions import ApplicationError, NotFoundError
from risk.models import RiskConfigVersion
from rules.selectors import RULES_STATE_JOINS

CONFIG_CACHE_KEY = "risk:config:current"
CONFIG_CACHE_SECONDS = 60
SIZE_ANY_ACCOUNT_PERMISSION = "risk.size_any_account"


class RiskConfigMissing(ApplicationError):
    """Only on a database without the risk migrations' version 1: a deployment error, not a user's."""

    status_code = 500

    def __init__(self) -> None:
        super().__init__("No risk configuration exists; run the migrations (risk 0002 installs version 1).")


def _pack(config: RiskConfigVersion) -> dict[str, Any]:
    return {field.attname: getattr(config, field.attname) for field in config._meta.concrete_fields}


def _unpack(data: dict[str, Any]) -> RiskConfigVersion:
    return RiskConfigVersion.from_db(DEFAULT_DB_ALIAS, list(data), list(data.values()))


def risk_config_current() -> RiskConfigVersion:
    """The configuration in force (the newest version), from the shared cache or the database."""
    cached = cache.get(CONFIG_CACHE_KEY)
    if cached is not None:
        return _unpack(cached)
    config = RiskConfigVersion.objects.order_by("-version").first()
    if config is None:
        raise RiskConfigMissing()
    cache.add(CONFIG_CACHE_KEY, _pack(config), timeout=CONFIG_CACHE_SECONDS)
    return config


def risk_config_invalidate_cache() -> None:
    cache.delete(CONFIG_CACHE_KEY)


def risk_config_history() -> QuerySet[RiskConfigVersion]:
    """Every version, newest first, each with its previous version (the old values) and who made it."""
    return RiskConfigVersion.objects.select_related("changed_by", "previous").order_by("-version")


def risk_sizing_account_get(*, user: User, account_id: int) -> TradingAccount:
    """The account a user may size: holders of risk.size_any_account (owner, support, the bot's API user) any
    account, everyone else their own; another trader's account is a 404 like a missing one."""
    # The account's rule set and its live state come in the same query (sizing caps at the headroom).
    accounts = (
        TradingAccount.objects.all()
        if user.has_perm(SIZE_ANY_ACCOUNT_PERMISSION)
        else trading_account_list_for_user(user=user)
    )
    try:
        return accounts.select_related("latest_snapshot", *RULES_STATE_JOINS).get(pk=account_id)
    except (TradingAccount.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(f"Trading account {account_id} not found.") from None
