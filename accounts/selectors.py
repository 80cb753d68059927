"""Reads, always scoped to what the user may see: operators (owner, support) see every account, traders their own."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from accounts.models import AccountSnapshot, AccountStatus, TradingAccount, User
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


SNAPSHOT_HISTORY_MAX_POINTS = 2000
SNAPSHOT_HISTORY_MAX_DAYS = 31


def account_snapshot_history(
    *, account: TradingAccount, since: datetime, until: datetime, step_seconds: int
) -> list[dict[str, Any]]:
    """Snapshots of [since, until) downsampled on the server: one point per `step_seconds` bucket (the bucket's
    last snapshot, with the bucket's lowest and highest equity), oldest first. The caller bounds the range."""
    points: list[dict[str, Any]] = []
    origin = since.timestamp()
    current_bucket = None
    rows = (
        AccountSnapshot.objects.filter(account=account, taken_at__gte=since, taken_at__lt=until)
        .order_by("taken_at", "pk")
        .values_list("taken_at", "server_time", "balance", "equity", "margin", "margin_level", "profit")
        .iterator(chunk_size=2000)
    )
    for taken_at, server_time, balance, equity, margin, margin_level, profit in rows:
        bucket = int((taken_at.timestamp() - origin) // step_seconds)
        if bucket != current_bucket:
            current_bucket = bucket
            points.append({"equity_min": equity, "equity_max": equity, "samples": 0})
        point = points[-1]
        point.update(
            taken_at=taken_at,
            server_time=server_time,
            balance=balance,
            equity=equity,
            margin=margin,
            margin_level=margin_level,
            profit=profit,
            equity_min=min(point["equity_min"], equity),
            equity_max=max(point["equity_max"], equity),
            samples=point["samples"] + 1,
        )
    return points


def account_list_filtered(
    *, user: User, status: str | None = None, server: str | None = None, search: str | None = None
) -> QuerySet[TradingAccount]:
    accounts = trading_account_list_for_user(user=user).select_related("health", "guard_state")
    if status:
        accounts = accounts.filter(status=status)
    if server:
        accounts = accounts.filter(server=server)
    if search:
        query = Q(label__icontains=search) | Q(server__icontains=search)
        if search.isdigit():
            query |= Q(login=int(search))
        accounts = accounts.filter(query)
    return accounts.order_by("pk")


def user_visible_account_ids(*, user: User) -> list[int]:
    return list(trading_account_list_for_user(user=user).order_by("pk").values_list("pk", flat=True))
