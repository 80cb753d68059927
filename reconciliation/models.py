"""Reconciliation data: what the bot expects, what the terminal has, and what support staff must look at.

Decisions (see docs/ARCHITECTURE.md "Reconciliation"):
* ReconciliationEvent rows are keyed by a stable `fingerprint` (account + kind + bot trade id or ticket). A partial
  unique constraint allows one *active* row per fingerprint (active = not resolved, or resolved while the condition is
  still present), so a restarted or repeated sync can never duplicate an event.
* LivePosition mirrors the terminal: one row per open ticket, deleted when the ticket is no longer open.
* AccountSync is the run log (one row per sync, pruned after a retention period); SyncCycle is one row per beat cycle.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import BaseModel

_PRICE: dict[str, Any] = {"max_digits": 20, "decimal_places": 8}
_VOLUME: dict[str, Any] = {"max_digits": 14, "decimal_places": 4}
_MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 2}


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class BotTradeStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class CloseReason(models.TextChoices):
    PENDING = "pending", "Pending (looking up the deals)"
    STOP_LOSS = "stop_loss", "Stop loss"
    TAKE_PROFIT = "take_profit", "Take profit"
    STOP_OUT = "stop_out", "Stop out"
    MANUAL = "manual", "Manual"
    EXPERT = "expert", "Expert"
    CLOSE_BY = "close_by", "Close by"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class BotTrade(BaseModel):
    """A position the signal bot expects on an account. Idempotent on (account, signal_id, leg).

    `matched_ticket` remembers the position the sync paired it with; later syncs pass it to the matcher as the
    ticket, so a pairing sticks (a partial close shows as volume_mismatch instead of missing + unmatched). On a
    netting account it is the symbol's position the trade's group was last matched to (`net_match`).
    `closed_by` is what the deals say about a missing position: `pending` while the look-up is retried.
    """

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="bot_trades"
    )
    signal_id = models.CharField(max_length=64)
    approval_id = models.CharField(max_length=64, blank=True)
    leg = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    symbol = models.CharField(max_length=32, help_text="Canonical symbol name, e.g. EURUSD.")
    side = models.CharField(max_length=4, choices=Side.choices)
    volume = models.DecimalField(**_VOLUME, validators=[MinValueValidator(Decimal("0.0001"))])
    entry_price = models.DecimalField(**_PRICE, validators=[MinValueValidator(Decimal("0.00000001"))])
    sl = models.DecimalField(**_PRICE, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))])
    tp = models.DecimalField(**_PRICE, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))])
    ticket = models.PositiveBigIntegerField(null=True, blank=True)
    magic = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    tag = models.CharField(max_length=31, blank=True, help_text="What the bot put in the order comment.")
    status = models.CharField(
        max_length=8, choices=BotTradeStatus.choices, default=BotTradeStatus.OPEN, db_index=True
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=16, choices=CloseReason.choices, blank=True)
    matched_ticket = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    net_match = models.ForeignKey(
        "reconciliation.NetMatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bot_trades",
        editable=False,
        help_text="Netting accounts: the group this trade belongs to while it is matched to its symbol's position.",
    )
    missing_since = models.DateTimeField(null=True, blank=True, editable=False)
    close_lookups = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["account", "created_at", "pk"]
        permissions = [("write_any_account", "Can register and close bot trades on any account")]
        indexes = [models.Index(fields=["account", "status"], name="bottrade_account_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "signal_id", "leg"],
                name="uniq_bottrade_account_signal_leg",
                violation_error_message="This account already has a bot trade with this signal id and leg.",
            ),
            models.CheckConstraint(condition=Q(volume__gt=0), name="bottrade_volume_positive"),
            models.CheckConstraint(condition=Q(entry_price__gt=0), name="bottrade_entry_positive"),
            models.CheckConstraint(condition=~Q(signal_id=""), name="bottrade_signal_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.signal_id}#{self.leg} {self.side} {self.volume} {self.symbol}"

    def clean(self) -> None:
        self.symbol = (self.symbol or "").strip().upper()
        self.signal_id = (self.signal_id or "").strip()
        errors = {}
        if not self.symbol:
            errors["symbol"] = "The symbol is required."
        if not self.signal_id:
            errors["signal_id"] = "The signal id is required."
        if self.status == BotTradeStatus.CLOSED and self.closed_at is None:
            errors["closed_at"] = "A closed bot trade needs its closing time."
        if errors:
            raise ValidationError(errors)

    @property
    def effective_ticket(self) -> int | None:
        return self.ticket or self.matched_ticket


class LivePosition(models.Model):
    """An open position as the terminal last reported it. `opened_at` is UTC; `opened_at_server_epoch` is the raw
    trade-server wall-clock epoch the terminal gave (server time = that epoch read as UTC wall time)."""

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="live_positions"
    )
    ticket = models.PositiveBigIntegerField()
    symbol = models.CharField(max_length=32, help_text="Terminal symbol name.")
    canonical_symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=Side.choices)
    volume = models.DecimalField(**_VOLUME)
    price_open = models.DecimalField(**_PRICE)
    price_current = models.DecimalField(**_PRICE)
    sl = models.DecimalField(**_PRICE, null=True, blank=True)
    tp = models.DecimalField(**_PRICE, null=True, blank=True)
    profit = models.DecimalField(**_MONEY)
    swap = models.DecimalField(**_MONEY, default=Decimal("0"))
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField()
    opened_at_server_epoch = models.BigIntegerField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    bot_trade = models.ForeignKey(
        BotTrade, null=True, blank=True, on_delete=models.SET_NULL, related_name="live_positions"
    )
    match_method = models.CharField(max_length=8, blank=True)

    class Meta:
        ordering = ["account", "ticket"]
        constraints = [
            models.UniqueConstraint(fields=["account", "ticket"], name="uniq_liveposition_account_ticket")
        ]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.side} {self.volume} {self.symbol}"

    @property
    def opened_at_server_wall(self) -> datetime:
        """The opening time as the broker's clock showed it (a fixed-offset aware datetime)."""
        offset = self.opened_at_server_epoch - int(self.opened_at.timestamp())
        return self.opened_at.astimezone(timezone(timedelta(seconds=offset)))


class NetMatch(models.Model):
    """Netting accounts: the open bot trades of one symbol (`bot_trades`) and the one position they net to, as the
    latest successful sync saw them. One row per account and canonical symbol while the group is matched; the sync
    deletes it when the group is not (position closed, net zero); its events keep the history."""

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="net_matches"
    )
    canonical_symbol = models.CharField(max_length=32)
    ticket = models.PositiveBigIntegerField(help_text="The symbol's position.")
    side = models.CharField(
        max_length=4, choices=Side.choices, help_text="Direction of the net expected volume."
    )
    net_volume = models.DecimalField(**_VOLUME, help_text="|buys - sells| of the group's bot trades.")
    position_volume = models.DecimalField(**_VOLUME)
    divergences = models.JSONField(default=list, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["account", "canonical_symbol"]
        verbose_name_plural = "net matches"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "canonical_symbol"], name="uniq_netmatch_account_symbol"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.net_volume} {self.canonical_symbol} -> #{self.ticket}"


class SymbolOverride(BaseModel):
    """Per-symbol settings the terminal cannot tell us: the canonical name and the pip size.

    Scope: an account row beats a server row, which beats a global row (no server, no account). A pip given for a
    canonical name (a row named like the canonical symbol) also applies to broker variants mapped onto it, so the
    seeded XAUUSD 0.1 covers `XAUUSD.m` once that is mapped to XAUUSD.
    """

    account = models.ForeignKey(
        "accounts.TradingAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="symbol_overrides",
    )
    server = models.CharField(max_length=128, blank=True, help_text="Trade server; empty for every server.")
    name = models.CharField(max_length=32, help_text="Terminal symbol name, e.g. XAUUSD.m")
    canonical = models.CharField(max_length=32, blank=True, help_text="Empty: the name upper-cased.")
    pip = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )

    class Meta:
        ordering = ["name", "server"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"],
                condition=Q(account__isnull=False),
                name="uniq_symboloverride_account_name",
                violation_error_message="This account already has an override for this symbol.",
            ),
            models.UniqueConstraint(
                fields=["server", "name"],
                condition=Q(account__isnull=True),
                name="uniq_symboloverride_server_name",
                violation_error_message="There is already an override for this symbol and server.",
            ),
            models.CheckConstraint(
                condition=Q(account__isnull=True) | Q(server=""), name="symboloverride_one_scope"
            ),
            models.CheckConstraint(
                condition=Q(pip__isnull=True) | Q(pip__gt=0), name="symboloverride_pip_positive"
            ),
        ]

    def __str__(self) -> str:
        scope = f"account {self.account_id}" if self.account_id else (self.server or "all servers")
        return f"{self.name} ({scope})"

    def clean(self) -> None:
        self.name = (self.name or "").strip()
        self.canonical = (self.canonical or "").strip().upper()
        self.server = (self.server or "").strip()
        if self.account_id and self.server:
            raise ValidationError({"server": "Give either an account or a server, not both."})
        if not self.canonical and self.pip is None:
            raise ValidationError("Give a canonical name, a pip size, or both.")


class EventKind(models.TextChoices):
    SYMBOL_MISMATCH = "symbol_mismatch", "Symbol mismatch"
    SIDE_MISMATCH = "side_mismatch", "Side mismatch"
    ENTRY_SLIPPAGE = "entry_slippage", "Entry slippage"
    VOLUME_MISMATCH = "volume_mismatch", "Volume mismatch"
    SL_MISMATCH = "sl_mismatch", "SL mismatch"
    TP_MISMATCH = "tp_mismatch", "TP mismatch"
    UNMATCHED_POSITION = "unmatched_position", "Unmatched position"
    MISSING_POSITION = "missing_position", "Missing position"


class EventState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE_EVENT = ~Q(state=EventState.RESOLVED) | Q(gone_at__isnull=True)


class ReconciliationEvent(models.Model):
    """One record per condition for as long as it lasts: first/last seen, and `gone_at` once a successful sync no
    longer sees it. A gone event that comes back before it is resolved is reopened (occurrences + 1); a resolved
    event whose condition persists stays resolved (no nagging) until the condition goes."""

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="recon_events"
    )
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    fingerprint = models.CharField(max_length=96)
    bot_trade = models.ForeignKey(
        BotTrade, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    ticket = models.PositiveBigIntegerField(null=True, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=12, choices=EventState.choices, default=EventState.OPEN, db_index=True
    )
    first_seen_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    gone_at = models.DateTimeField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-first_seen_at", "-pk"]
        indexes = [models.Index(fields=["account", "state"], name="event_account_state")]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"], condition=ACTIVE_EVENT, name="uniq_event_active_fingerprint"
            ),
        ]

    def __str__(self) -> str:
        target = f"ticket {self.ticket}" if self.ticket else f"bot trade {self.bot_trade_id}"
        return f"{self.get_kind_display()} on {target}"

    @property
    def is_present(self) -> bool:
        return self.gone_at is None


class AccountSync(models.Model):
    """One sync of one account (the run log; pruned after RECONCILIATION_RUN_RETENTION_HOURS)."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="syncs")
    cycle_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField()
    error_class = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    reconciliation_error = models.CharField(
        max_length=500,
        blank=True,
        help_text="Reconciliation failed on this reading; the snapshot and guards went on.",
    )
    guards_error = models.CharField(
        max_length=500, blank=True, help_text="The guards failed on this reading."
    )
    positions = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    events_opened = models.PositiveIntegerField(default=0)
    events_gone = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-started_at"], name="sync_account_recent"),
            models.Index(fields=["started_at"], name="sync_started"),
        ]

    def __str__(self) -> str:
        return f"sync of {self.account_id} at {self.started_at:%Y-%m-%d %H:%M:%S}Z {'ok' if self.ok else 'failed'}"


class SyncCycle(models.Model):
    """One beat cycle: the fan-out and what its account syncs did, counted from the durable records (AccountSync rows
    for synced/failed, an increment here for skipped) by later cycles; `closed` once final.

    `lag_seconds` is how late the cycle started against the schedule (previous start + interval). A *missed* row
    stands for the cycles that could not run while the broker or the database was down (`missed_cycles` of them,
    from `started_at`), written by the first cycle that runs again."""

    started_at = models.DateTimeField(db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    interval_seconds = models.PositiveIntegerField()
    accounts = models.PositiveIntegerField(default=0)
    synced = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    lag_seconds = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal("0"))
    queue_lag_seconds = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Mean wait between dispatch and the start of an account's sync.",
    )
    queue_lag_max_seconds = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Longest wait between dispatch and the start of an account's sync (the last in the queue).",
    )
    closed = models.BooleanField(default=False)
    missed = models.BooleanField(
        default=False, help_text="Cycles that did not run (broker or database down)."
    )
    missed_cycles = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        if self.missed:
            return f"{self.missed_cycles} missed cycle(s) from {self.started_at:%Y-%m-%d %H:%M:%S}Z"
        return f"cycle {self.pk} at {self.started_at:%Y-%m-%d %H:%M:%S}Z"

    @property
    def duration_seconds(self) -> Decimal | None:
        if self.finished_at is None:
            return None
        return Decimal((self.finished_at - self.started_at).total_seconds()).quantize(Decimal("0.001"))

    @property
    def not_run(self) -> int:
        """Dispatched syncs that reported nothing (expired before a worker took them, or lost)."""
        return max(self.accounts - self.synced - self.failed - self.skipped, 0)
