import zoneinfo
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from core.models import BaseModel


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    SUPPORT = "support", "Support"
    TRADER = "trader", "Trader"


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.")


@cache
def available_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class User(AbstractUser):
    """Roles are auth groups (owner, support, trader) so their permissions are data, editable by the owner."""

    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone in which notifications and pages show times (e.g. Europe/Berlin).",
    )

    @property
    def role(self) -> str | None:
        names = {g.name for g in self.groups.all()}
        for role in (Role.OWNER, Role.SUPPORT, Role.TRADER):
            if role.value in names:
                return role.value
        return None

    @property
    def is_owner(self) -> bool:
        return self.is_superuser or self.groups.filter(name=Role.OWNER).exists()

    @property
    def is_support(self) -> bool:
        return self.groups.filter(name=Role.SUPPORT).exists()

    @property
    def is_operator(self) -> bool:
        """Owners and support staff see every account; traders only their own."""
        return self.is_superuser or self.groups.filter(name__in=[Role.OWNER, Role.SUPPORT]).exists()


class GatewayBackend(models.TextChoices):
    SIMULATED = "simulated", "Simulated terminal"
    NATIVE = "native", "Official MetaTrader5 module"
    BRIDGE = "bridge", "Bridge server"
    EA = "ea", "Expert Advisor push (MT5Guard.mq5)"


def default_backend() -> str:
    """New accounts use MT5_DEFAULT_BACKEND (`bridge` in production, `simulated` in development)."""
    return str(settings.MT5_DEFAULT_BACKEND)


SIMULATED_REFUSED = (
    "The simulated terminal is for development only and is refused while DEBUG is off: choose the bridge (or native) "
    "backend for this account, or pause it."
)


class MarginMode(models.TextChoices):
    """ACCOUNT_MARGIN_MODE_*: on the two netting modes a terminal holds one position per symbol."""

    HEDGING = "hedging", "Hedging (one position per trade)"
    NETTING = "netting", "Netting (one position per symbol)"
    EXCHANGE = "exchange", "Exchange (netting, one position per symbol)"

    @classmethod
    def is_netting(cls, value: str) -> bool:
        return value in (cls.NETTING, cls.EXCHANGE)


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


def _validate_connection(value: object) -> None:
    allowed = {"bridge_url", "path", "portable", "timeout_ms", "server_utc_offset_seconds"}
    if not isinstance(value, dict):
        raise ValidationError("Connection settings must be an object.")
    unknown = set(value) - allowed
    if unknown:
        raise ValidationError(
            f"Unknown connection settings: {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(allowed))}."
        )
    for key in ("timeout_ms", "server_utc_offset_seconds"):
        if key in value and (not isinstance(value[key], int) or isinstance(value[key], bool)):
            raise ValidationError(f"{key} must be a whole number.")
    if "timeout_ms" in value and value["timeout_ms"] <= 0:
        raise ValidationError("timeout_ms must be positive.")
    if "portable" in value and not isinstance(value["portable"], bool):
        raise ValidationError("portable must be true or false.")
    for key in ("bridge_url", "path"):
        if key in value and not isinstance(value[key], str):
            raise ValidationError(f"{key} must be text.")


class TradingAccount(BaseModel):
    """A trader's MT5 account and how to reach its terminal. The password is stored encrypted (core.crypto)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trading_accounts"
    )
    login = models.PositiveBigIntegerField(validators=[MinValueValidator(1)], help_text="MT5 account number.")
    server = models.CharField(max_length=128, help_text="Trade server name, e.g. 'Broker-Demo'.")
    broker_company = models.CharField(max_length=128, blank=True)
    label = models.CharField(max_length=128, blank=True)
    backend = models.CharField(max_length=16, choices=GatewayBackend.choices, default=default_backend)
    connection = models.JSONField(
        default=dict,
        blank=True,
        validators=[_validate_connection],
        help_text="bridge_url, path, portable, timeout_ms, server_utc_offset_seconds (all optional).",
    )
    password_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(
        max_length=8, choices=AccountStatus.choices, default=AccountStatus.ACTIVE, db_index=True
    )
    latest_snapshot = models.ForeignKey(
        "accounts.AccountSnapshot",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    margin_mode = models.CharField(
        max_length=8,
        choices=MarginMode.choices,
        default=MarginMode.HEDGING,
        editable=False,
        help_text="As the terminal last reported it (account_info().margin_mode); reconciliation follows it.",
    )
    # Terminal identity (pipeline.services.identity): the highest ticket any reading showed, and a hold set when a
    # reading is not this account any more (another login, history gone backwards). While held, syncs fail and the
    # guards act on nothing until an operator confirms the account (TerminalIdentityEvent keeps the audit).
    max_ticket_seen = models.PositiveBigIntegerField(default=0, editable=False)
    identity_hold_reason = models.CharField(max_length=300, blank=True, editable=False)
    identity_hold_since = models.DateTimeField(null=True, blank=True, editable=False)
    deals_cursor = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The deal history was read up to here by the last complete sync; the next reads from here minus "
        "an overlap (none yet: a fixed look-back).",
    )

    class Meta:
        permissions = [("confirm_terminal_identity", "Can confirm a held account's terminal identity")]
        ordering = ["server", "login"]
        constraints = [
            models.UniqueConstraint(
                fields=["login", "server"],
                name="uniq_account_login_server",
                violation_error_message="An account with this login already exists on this server.",
            ),
            models.CheckConstraint(condition=Q(login__gte=1), name="account_login_positive"),
            models.CheckConstraint(condition=~Q(server=""), name="account_server_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.login}@{self.server}"

    def clean(self) -> None:
        self.server = (self.server or "").strip()
        if not self.server:
            raise ValidationError({"server": "The trade server name is required."})
        if self.simulated_refused:
            raise ValidationError({"backend": SIMULATED_REFUSED})

    @property
    def simulated_refused(self) -> bool:
        """An active account on the simulated terminal outside development (a paused one may stay, to be fixed)."""
        return (
            self.backend == GatewayBackend.SIMULATED
            and self.status == AccountStatus.ACTIVE
            and not settings.MT5_SIMULATED_ALLOWED
        )

    @property
    def is_netting(self) -> bool:
        return MarginMode.is_netting(self.margin_mode)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def is_snapshot_fresh(self) -> bool:
        snap = self.latest_snapshot
        return snap is not None and snap.age_seconds <= settings.ACCOUNT_SNAPSHOT_STALE_SECONDS


class SnapshotSource(models.TextChoices):
    TERMINAL = "terminal", "Terminal sync"
    EA_PUSH = "ea_push", "EA push"
    SCENARIO = "scenario", "Scenario runner"


_MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 2}


class AccountSnapshot(models.Model):
    """One reading of AccountInfo. `taken_at` is our UTC clock; `server_time` is the same instant as the broker
    reports it, with its UTC offset kept beside it so the broker's wall clock (trading day) can be rebuilt."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="snapshots")
    balance = models.DecimalField(**_MONEY)
    credit = models.DecimalField(**_MONEY, default=Decimal("0"))
    profit = models.DecimalField(**_MONEY, default=Decimal("0"))
    equity = models.DecimalField(**_MONEY)
    margin = models.DecimalField(**_MONEY, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    margin_free = models.DecimalField(**_MONEY)
    margin_level = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal("0"))
    leverage = models.PositiveIntegerField(default=100)
    margin_mode = models.CharField(max_length=8, choices=MarginMode.choices, default=MarginMode.HEDGING)
    currency = models.CharField(max_length=8)
    taken_at = models.DateTimeField(db_index=True)
    server_time = models.DateTimeField()
    server_utc_offset_seconds = models.IntegerField(default=0)
    server_utc_offset_known = models.BooleanField(
        default=True,
        help_text="False while the broker's clock offset was not measured yet: server_time is then shown at UTC, "
        "a guess that nothing depending on the broker's day may trust.",
    )
    source = models.CharField(max_length=16, choices=SnapshotSource.choices, default=SnapshotSource.TERMINAL)

    class Meta:
        ordering = ["-taken_at"]
        get_latest_by = "taken_at"
        indexes = [models.Index(fields=["account", "-taken_at"], name="snapshot_account_recent")]
        constraints = [
            models.CheckConstraint(condition=Q(margin__gte=0), name="snapshot_margin_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.account} equity {self.equity} {self.currency} at {self.taken_at:%Y-%m-%d %H:%M:%S}Z"

    @property
    def server_wall_time(self) -> datetime:
        return self.server_time.astimezone(timezone(timedelta(seconds=self.server_utc_offset_seconds)))

    @property
    def age_seconds(self) -> float:
        return (dj_timezone.now() - self.taken_at).total_seconds()


class AccountHealth(models.Model):
    """The latest health probe of an account's terminal link, for the pages and the admin (one row per account).

    `error` is the gateway's message, which never contains credentials."""

    account = models.OneToOneField(
        TradingAccount, primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    connected = models.BooleanField(default=False, help_text="Terminal connected to its trade server.")
    trade_allowed = models.BooleanField(
        default=False, help_text="Algo Trading on, account may trade, EA trading allowed."
    )
    tradeapi_disabled = models.BooleanField(
        default=False, help_text="Trading through the Python API switched off."
    )
    ping_ms = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    newest_tick_age_seconds = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    probe_latency_ms = models.DecimalField(max_digits=12, decimal_places=3)
    error = models.TextField(blank=True)
    circuit_state = models.CharField(max_length=16, blank=True, help_text="closed / open / half_open")
    circuit_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    server_utc_offset_seconds = models.IntegerField(
        null=True, blank=True, help_text="The broker clock's offset from UTC; empty while unknown."
    )
    server_utc_offset_source = models.CharField(
        max_length=16, blank=True, help_text="configured / estimated / unknown"
    )
    server_utc_offset_measured_at = models.DateTimeField(
        null=True, blank=True, help_text="When a fresh tick last confirmed the estimate (re-checked daily)."
    )
    checked_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "account health"

    def __str__(self) -> str:
        return f"{self.account}: {'connected' if self.connected else 'down'} at {self.checked_at:%H:%M:%S}Z"

    @property
    def broker_clock(self) -> str:
        """The broker clock as the pages show it: `UTC+03:00 (estimated)`, or that it is unknown."""
        if self.server_utc_offset_seconds is None:
            return "offset unknown" if self.server_utc_offset_source == "unknown" else "-"
        sign = "+" if self.server_utc_offset_seconds >= 0 else "-"
        hours, rest = divmod(abs(self.server_utc_offset_seconds), 3600)
        return f"UTC{sign}{hours:02d}:{rest // 60:02d} ({self.server_utc_offset_source})"


class TerminalIdentityEvent(models.Model):
    """Audit of terminal identity: a hold (the terminal no longer reads as this account) and its confirmation."""

    class Kind(models.TextChoices):
        HOLD = "hold", "Held: the terminal is not this account any more"
        CONFIRMED = "confirmed", "Confirmed by an operator"

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="identity_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.account} ({self.created_at:%Y-%m-%d %H:%M})"
