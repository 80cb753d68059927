"""Reads, always scoped to what the user may see: operators (owner, support) see every account, traders their own."""

from django.db.models import QuerySet

from accounts.models import AccountStatus, TradingAccount, User
from core.exceptions import NotFoundError


def trading_account_list_for_user(*, user: User) -> QuerySet[TradingAccount]:
    accounts = TradingAccount.objects.select_related("latest_snapshot", "owner")
    if user.is_operator:
        return accounts
    return accounts.filter(owner=user)


def trading_account_get_for_user(*, user: User, account_id: int) -> TradingAccount:
    try:
        return trading_account_list_for_user(user=user).get(pk=account_id)
    except (TradingAccount.DoesNotExist, ValueError, TypeError):
        # The same answer whether the account does not exist or belongs to someone else: no existence leak.
        raise NotFoundError(f"Trading account {account_id} not found.") from None


def trading_account_list_active() -> QuerySet[TradingAccount]:
    return TradingAccount.objects.filter(status=AccountStatus.ACTIVE)
