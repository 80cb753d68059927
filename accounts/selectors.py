"""Reads, always scoped to what the user may see: operators (owner, support) see every account, traders their own."""

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.models import AccountStatus, TradingAccount, User
from core.exceptions import NotFoundError

if TYPE_CHECKING:
    from integrations.mt5.gateway import Mt5Gateway


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


def trading_account_gateway(*, account: TradingAccount) -> "Mt5Gateway":
    """The account's terminal gateway (cached per process by integrations.mt5.get_gateway). Decrypts the password
    only here, straight into the gateway's config, which never logs or repr()s it. Raises GatewayError for an
    active simulated account while DEBUG is off."""
    from django.conf import settings

    from accounts.models import SIMULATED_REFUSED
    from core.crypto import decrypt_secret
    from integrations.mt5 import ConnectionConfig, get_gateway
    from integrations.mt5.errors import GatewayError

    if account.simulated_refused:
        # Last line of defence: nothing in production ever syncs, sizes or closes against a simulated terminal.
        raise GatewayError(f"{account}: {SIMULATED_REFUSED}", call="connect")
    conn = account.connection or {}
    return get_gateway(
        ConnectionConfig(
            account_key=f"account-{account.pk}",
            backend=account.backend,
            login=account.login,
            server=account.server,
            password=decrypt_secret(account.password_encrypted) if account.password_encrypted else "",
            bridge_url=conn.get("bridge_url") or settings.MT5_BRIDGE_URL,
            bridge_secret=settings.MT5_BRIDGE_SECRET or "",
            path=conn.get("path"),
            portable=bool(conn.get("portable", False)),
            timeout_ms=int(conn.get("timeout_ms", 60_000)),
            server_utc_offset_seconds=conn.get("server_utc_offset_seconds"),
        )
    )
