"""Writes for users, trading accounts and snapshots."""

import logging
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import (
    AccountHealth,
    AccountSnapshot,
    Role,
    SnapshotSource,
    TerminalIdentityEvent,
    TradingAccount,
    User,
    default_backend,
)
from core.crypto import encrypt_secret
from core.db import insert_sql
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


_SNAPSHOT_DECIMALS = [
    f.attname for f in AccountSnapshot._meta.concrete_fields if isinstance(f, models.DecimalField)
]


def account_snapshot_record(
    *,
    account: TradingAccount,
    state: AccountState,
    source: str = SnapshotSource.TERMINAL,
    taken_at: datetime | None = None,
    max_ticket_seen: int = 0,
) -> AccountSnapshot:
    """Store one AccountInfo reading and make it the account's latest, in ONE statement (the sync runs this for every
    account every 10 s): the insert and the account's update (latest snapshot, margin mode, and the ticket watermark
    raised to `max_ticket_seen` when given) as one `WITH … INSERT … UPDATE`."""
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
    # The gateway typed every value; the database enforces digits, the margin's sign and the account's existence.
    # The one check it would not make: NaN is a valid PostgreSQL numeric (and compares above any number).
    for name in _SNAPSHOT_DECIMALS:
        value = getattr(snapshot, name)
        if value is not None and not value.is_finite():
            raise ValidationError({name: f"{value} is not a finite number"})
    insert, params = insert_sql([snapshot], returning=["id"])
    table = TradingAccount._meta.db_table
    sql = (
        f"WITH s AS ({insert}) UPDATE {table} SET latest_snapshot_id = s.id, margin_mode = %s, "  # noqa: S608 - names from the models, values as parameters
        f"max_ticket_seen = GREATEST({table}.max_ticket_seen, %s) FROM s WHERE {table}.id = %s RETURNING s.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, snapshot.margin_mode, max_ticket_seen, account.pk])
        row = cursor.fetchone()
    if row is None:
        raise TradingAccount.DoesNotExist(f"trading account {account.pk} is gone")
    snapshot.pk = row[0]
    snapshot._state.adding, snapshot._state.db = False, connection.alias
    account.latest_snapshot, account.margin_mode = snapshot, snapshot.margin_mode
    account.max_ticket_seen = max(account.max_ticket_seen, max_ticket_seen)
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


def trading_account_identity_hold(*, account: TradingAccount, reason: str, detail: dict[str, Any]) -> None:
    """Hold the account's syncs: its terminal no longer reads as this account. Idempotent while held."""
    with transaction.atomic():
        updated = TradingAccount.objects.filter(pk=account.pk, identity_hold_reason="").update(
            identity_hold_reason=reason[:300], identity_hold_since=timezone.now()
        )
        if updated:
            TerminalIdentityEvent.objects.create(
                account=account, kind=TerminalIdentityEvent.Kind.HOLD, reason=reason[:300], detail=detail
            )
            logger.error("account %s held: %s", account.pk, reason)
    account.refresh_from_db(fields=["identity_hold_reason", "identity_hold_since"])


def trading_account_identity_confirm(*, account: TradingAccount, actor: User, reason: str) -> TradingAccount:
    """An operator confirms the terminal is this account again (after re-login, a restored terminal...): syncs go
    on, the ticket watermark starts afresh from the next reading. Audited with who and why."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the terminal can be trusted again."]})
    with transaction.atomic():
        locked = TradingAccount.objects.select_for_update().get(pk=account.pk)
        if not locked.identity_hold_reason:
            raise ValidationError("This account is not held.")
        TerminalIdentityEvent.objects.create(
            account=locked,
            kind=TerminalIdentityEvent.Kind.CONFIRMED,
            reason=reason[:300],
            detail={"held_for": locked.identity_hold_reason, "held_since": str(locked.identity_hold_since)},
            actor=actor,
        )
        locked.identity_hold_reason, locked.identity_hold_since, locked.max_ticket_seen = "", None, 0
        locked.save(update_fields=["identity_hold_reason", "identity_hold_since", "max_ticket_seen"])
    return locked
