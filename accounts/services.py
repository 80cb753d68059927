"""Writes for users, trading accounts and snapshots."""

import logging
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    AccountHealth,
    AccountSnapshot,
    Role,
    SnapshotSource,
    TradingAccount,
    User,
    default_backend,
)
from core.crypto import encrypt_secret
from core.realtime import STAFF_GROUP, account_group, broadcast
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.types import AccountState, Health

logger = logging.getLogger(__name__)


@transaction.atomic
def user_create(*, username: str, password: str, role: Role | str, email: str = "") -> User:
    role = Role(role)
    user = User(username=username, email=email, is_staff=role in (Role.OWNER, Role.SUPPORT))
    user.set_password(password)
    user.full_clean()
    user.save()
    user.groups.add(Group.objects.get(name=role.value))
    return user


@transaction.atomic
def trading_account_create(
    *,
    owner: User,
    login: int,
    server: str,
    password: str = "",
    backend: str | None = None,
    connection: dict[str, Any] | None = None,
    broker_company: str = "",
    label: str = "",
) -> TradingAccount:
    """A new account; `backend` defaults to MT5_DEFAULT_BACKEND. Refused (ValidationError on `backend`) for the
    simulated terminal while DEBUG is off."""
    account = TradingAccount(
        owner=owner,
        login=login,
        server=server,
        backend=backend or default_backend(),
        connection=connection or {},
        broker_company=broker_company,
        label=label,
    )
    if password:
        account.password_encrypted = encrypt_secret(password)
    account.full_clean()
    account.save()
    logger.info("trading account %s created for user %s", account, owner.pk)
    return account


def trading_account_set_password(*, account: TradingAccount, password: str) -> TradingAccount:
    account.password_encrypted = encrypt_secret(password) if password else ""
    account.save(update_fields=["password_encrypted", "updated_at"])
    logger.info("credentials of trading account %s replaced", account)
    return account


def account_snapshot_record(
    *,
    account: TradingAccount,
    state: AccountState,
    source: str = SnapshotSource.TERMINAL,
    taken_at: datetime | None = None,
) -> AccountSnapshot:
    """Store one AccountInfo reading and make it the account's latest (two queries; the sync runs this every 10 s)."""
    offset = state.server_time.utcoffset()
    snapshot = AccountSnapshot(
        account=account,
        balance=state.balance,
        credit=state.credit,
        profit=state.profit,
        equity=state.equity,
        margin=state.margin,
        margin_free=state.margin_free,
        margin_level=state.margin_level,
        leverage=state.leverage,
        margin_mode=str(state.margin_mode),
        currency=state.currency,
        taken_at=taken_at or timezone.now(),
        server_time=state.server_time,
        server_utc_offset_seconds=int(offset.total_seconds()) if offset else 0,
        server_utc_offset_known=state.server_utc_offset_known,
        source=source,
    )
    # Field validation (non-finite numbers, negative margin); constraints are the database's job, which saves a
    # query on a path that runs for every account every 10 s.
    snapshot.full_clean(exclude=["account"], validate_constraints=False)
    snapshot.save()
    account.latest_snapshot, account.margin_mode = snapshot, snapshot.margin_mode
    TradingAccount.objects.filter(pk=account.pk).update(
        latest_snapshot=snapshot, margin_mode=snapshot.margin_mode
    )
    return snapshot


def _broker_clock(health: Health) -> dict[str, Any]:
    """The broker clock as the probe saw it; a probe that could not reach the terminal keeps the last one known."""
    if not health.server_utc_offset_source:
        return {}
    return {
        "server_utc_offset_seconds": health.server_utc_offset,
        "server_utc_offset_source": health.server_utc_offset_source,
        "server_utc_offset_measured_at": health.server_utc_offset_measured_at,
    }


def account_health_probe(*, account: TradingAccount, gateway: Mt5Gateway) -> AccountHealth:
    """Probe the terminal link (never raises for terminal faults: a failed probe is a row with connected=False and
    the reason) and store it with the account's circuit-breaker state, for the pages to show."""
    health = gateway.health()
    circuit_state = getattr(gateway, "circuit_state", None)
    circuit = circuit_state() if callable(circuit_state) else {}
    opened_at = circuit.get("opened_at")
    row, _ = AccountHealth.objects.update_or_create(
        account=account,
        defaults={
            "connected": health.connected,
            "trade_allowed": health.trade_allowed,
            "tradeapi_disabled": health.tradeapi_disabled,
            "ping_ms": health.ping_ms,
            "newest_tick_age_seconds": health.newest_tick_age_seconds,
            "probe_latency_ms": health.probe_latency_ms,
            "error": health.error[:2000],
            "circuit_state": circuit.get("state", ""),
            "circuit_failures": circuit.get("failures", 0),
            "circuit_opened_at": datetime.fromtimestamp(opened_at, tz=UTC) if opened_at else None,
            **_broker_clock(health),
            "checked_at": health.checked_at,
        },
    )
    for group in (account_group(account.pk), STAFF_GROUP):
        broadcast(group, "health.updated", account_id=account.pk, connected=row.connected)
    return row
