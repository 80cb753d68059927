"""Guard data: settings (global + per-account overrides, with history), per-account state, audit alerts, close intents.

Decisions (docs/GUARDS.md has the full list):
* One global `GuardSettings` row (pk 1) holds every default of shared/spec/guards.md; `AccountGuardSettings` holds
  per-account overrides where an empty field means "inherit". Every change is a `GuardSettingsChange` row per field.
* `GuardState` (primary key = the account) is read with one `SELECT ... FOR UPDATE` that also brings the effective
  settings, and written with one `UPDATE`: the guard adds two queries to an account sync.
* `GuardAlert` is the audit trail (kind names are the scenario runner's event types); it never changes once written.
* `CloseIntent` is written before any order is sent; `idempotency_key` is unique across processes and restarts.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import BaseModel

_PERCENT: dict[str, Any] = {"max_digits": 9, "decimal_places": 4}
_MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 2}
_POSITIVE_PERCENT = [MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))]

GLOBAL_SETTINGS_PK = 1


class MarketGuardAction(models.TextChoices):
    ALERT = "alert", "Mark and alert only"
    CLOSE = "close", "Close the positions on the symbol"


class GuardSettingsFields(models.Model):
    """The settings every account gets unless its override says otherwise. Defaults are the spec's."""

    drawdown_warning_percent = models.DecimalField(
        **_PERCENT, default=Decimal("10"), validators=_POSITIVE_PERCENT
    )
    drawdown_critical_percent = models.DecimalField(
        **_PERCENT, default=Decimal("20"), validators=_POSITIVE_PERCENT
    )
    daily_loss_warning_percent = models.DecimalField(
        **_PERCENT,
        default=Decimal("4"),
        null=True,
        blank=True,
        validators=_POSITIVE_PERCENT,
        help_text="Empty: no daily-loss warning.",
    )
    daily_loss_critical_percent = models.DecimalField(
        **_PERCENT,
        default=Decimal("5"),
        null=True,
        blank=True,
        validators=_POSITIVE_PERCENT,
        help_text="Empty: the daily-loss guard never trips.",
    )
    confirm_readings = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Consecutive fresh snapshots at or beyond a level before it is entered.",
    )
    liquidation_grace_seconds = models.PositiveIntegerField(
        default=10,
        validators=[MaxValueValidator(3600)],
        help_text="Critical → re-check → close, after this delay.",
    )
    close_new_positions_when_halted = models.BooleanField(
        default=True, help_text="While halted, close any position that appears (it is always reported)."
    )
    market_guard_enabled = models.BooleanField(default=True)
    market_guard_action = models.CharField(
        max_length=8, choices=MarketGuardAction.choices, default=MarketGuardAction.ALERT
    )
    market_gap_percent = models.DecimalField(**_PERCENT, default=Decimal("5"), validators=_POSITIVE_PERCENT)
    market_gap_timeframe = models.PositiveIntegerField(
        default=1, help_text="MT5 TIMEFRAME_* value of the bars checked for gaps (1 = M1)."
    )
    market_spread_multiplier = models.DecimalField(
        max_digits=7, decimal_places=2, default=Decimal("3"), validators=[MinValueValidator(Decimal("1"))]
    )
    market_spread_window_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60)], help_text="The median spread is over this window."
    )
    market_spread_min_samples = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Readings needed before a spread is compared with the median.",
    )
    market_spread_cap_points = models.JSONField(
        default=dict, blank=True, help_text='Absolute spread cap per symbol, in points, e.g. {"XAUUSD": 80}.'
    )
    market_stale_quote_seconds = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    close_price_retries = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(20)],
        help_text="Fresh-price retries after REQUOTE / PRICE_CHANGED / PRICE_OFF.",
    )
    close_deviation_points = models.PositiveIntegerField(default=20, validators=[MaxValueValidator(10_000)])

    class Meta:
        abstract = True


# Field names, in admin order: the same names are the scenario file's `config.guards` keys.
SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in GuardSettingsFields._meta.local_fields)
# Settings of the installation that no account overrides (GuardSettings only).
GLOBAL_ONLY_FIELDS: tuple[str, ...] = ("traders_may_close_positions",)


def _validate_caps(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in value.items()
    ):
        raise ValidationError("Spread caps must be an object of symbol → positive whole number of points.")


def _validate_levels(obj: models.Model, prefix: str) -> dict[str, str]:
    warning = getattr(obj, f"{prefix}_warning_percent")
    critical = getattr(obj, f"{prefix}_critical_percent")
    if warning is not None and critical is not None and warning >= critical:
        return {f"{prefix}_warning_percent": "The warning level must be below the critical level."}
    return {}


class GuardSettings(GuardSettingsFields):
    """The installation's guard settings: a single row (pk 1), created by the data migration."""

    traders_may_close_positions = models.BooleanField(
        default=False,
        help_text="Traders may close positions of their own accounts by hand (API and pages). "
        "Owners and support always may.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "guard settings (global)"
        verbose_name_plural = "guard settings (global)"
        constraints = [
            models.CheckConstraint(condition=Q(pk=GLOBAL_SETTINGS_PK), name="guardsettings_single_row")
        ]

    def __str__(self) -> str:
        return "Global guard settings"

    def clean(self) -> None:
        _validate_caps(self.market_spread_cap_points)
        errors = _validate_levels(self, "drawdown") | _validate_levels(self, "daily_loss")
        if errors:
            raise ValidationError(errors)


class AccountGuardSettings(models.Model):
    """Per-account overrides. An empty field inherits the global value."""

    account = models.OneToOneField(
        "accounts.TradingAccount", on_delete=models.CASCADE, primary_key=True, related_name="guard_settings"
    )
    daily_loss_enabled = models.BooleanField(
        null=True,
        blank=True,
        help_text="Empty: as the global limits say. No: daily-loss guard off for this account.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "guard settings (account override)"
        verbose_name_plural = "guard settings (account overrides)"

    def __str__(self) -> str:
        return f"Guard overrides for {self.account_id}"

    def clean(self) -> None:
        _validate_caps(getattr(self, "market_spread_cap_points", None))
        errors = _validate_levels(self, "drawdown") | _validate_levels(self, "daily_loss")
        if errors:
            raise ValidationError(errors)


# Every global field exists on the override, nullable and without a default (empty = inherit).
for _field in GuardSettingsFields._meta.local_fields:
    _override = _field.clone()
    _override.null = True
    _override.blank = True
    _override.default = models.NOT_PROVIDED
    _override.help_text = "Empty: inherit the global value."
    AccountGuardSettings.add_to_class(_field.name, _override)


class GuardSettingsChange(models.Model):
    """One changed field of the global settings (account empty) or of an account override."""

    account = models.ForeignKey(
        "accounts.TradingAccount", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    field = models.CharField(max_length=64)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        scope = f"account {self.account_id}" if self.account_id else "global"
        return f"{scope}: {self.field} {self.old_value!r} → {self.new_value!r}"


class Level(models.TextChoices):
    NORMAL = "normal", "Normal"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


LEVEL_RANK = {Level.NORMAL: 0, Level.WARNING: 1, Level.CRITICAL: 2}


class GuardStatus(models.TextChoices):
    NORMAL = "normal", "Normal"
    WARNING = "warning", "Warning"
    TRIPPED = "tripped", "Tripped (liquidation scheduled)"
    HALTED = "halted", "Halted (liquidated; reset needed)"


class GuardState(models.Model):
    """What the guards remember about one account. Written only by guards.services."""

    account = models.OneToOneField(
        "accounts.TradingAccount", on_delete=models.CASCADE, primary_key=True, related_name="guard_state"
    )
    status = models.CharField(
        max_length=8, choices=GuardStatus.choices, default=GuardStatus.NORMAL, db_index=True
    )

    peak_equity = models.DecimalField(**_MONEY, null=True, blank=True)
    peak_at = models.DateTimeField(null=True, blank=True)
    broker_day = models.DateField(
        null=True, blank=True, help_text="Trading day (broker server time) of the anchor."
    )
    day_anchor = models.DecimalField(**_MONEY, null=True, blank=True)

    drawdown_level = models.CharField(max_length=8, choices=Level.choices, default=Level.NORMAL)
    drawdown_percent = models.DecimalField(**_PERCENT, null=True, blank=True)
    drawdown_warning_count = models.PositiveIntegerField(default=0)
    drawdown_critical_count = models.PositiveIntegerField(default=0)
    daily_loss_level = models.CharField(max_length=8, choices=Level.choices, default=Level.NORMAL)
    daily_loss_percent = models.DecimalField(**_PERCENT, null=True, blank=True)
    daily_loss_warning_count = models.PositiveIntegerField(default=0)
    daily_loss_critical_count = models.PositiveIntegerField(default=0)

    last_snapshot_id = models.BigIntegerField(null=True, blank=True)
    last_snapshot_at = models.DateTimeField(null=True, blank=True)
    last_balance = models.DecimalField(**_MONEY, null=True, blank=True)
    last_credit = models.DecimalField(**_MONEY, null=True, blank=True)
    last_equity = models.DecimalField(**_MONEY, null=True, blank=True)
    waiting_for_fresh = models.BooleanField(default=False)
    recent_balance_deals = models.JSONField(
        default=list,
        blank=True,
        help_text="Tickets of the latest balance operations already remembered (BalanceOperation rows): a reading "
        "whose overlapping history window returns only these needs no look-up.",
    )

    trip_id = models.UUIDField(null=True, blank=True, help_text="Current liquidation episode (idempotency).")
    trip_guard = models.CharField(max_length=16, blank=True)
    tripped_at = models.DateTimeField(null=True, blank=True)
    liquidate_at = models.DateTimeField(null=True, blank=True)
    liquidation_dispatched_at = models.DateTimeField(null=True, blank=True)
    liquidation_started_at = models.DateTimeField(null=True, blank=True)
    halted_at = models.DateTimeField(null=True, blank=True)

    reset_at = models.DateTimeField(null=True, blank=True)
    reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reset_reason = models.TextField(blank=True)

    market = models.JSONField(default=dict, blank=True, help_text="Per-symbol market-guard memory.")
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("reset_guard", "Can reset a tripped or halted guard (with a reason)"),
            ("close_position", "Can close positions of any account it sees by hand"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=["tripped", "halted"]) | Q(trip_id__isnull=False),
                name="guardstate_trip_has_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Guard state of {self.account_id}: {self.status}"

    @property
    def is_halted(self) -> bool:
        return self.status in (GuardStatus.TRIPPED, GuardStatus.HALTED)


class Guard(models.TextChoices):
    DRAWDOWN = "drawdown", "Drawdown"
    DAILY_LOSS = "daily_loss", "Daily loss"
    MARKET = "market", "Market"
    AUTOCLOSE = "autoclose", "Auto-close"
    SYSTEM = "system", "System"
    RULES = "rules", "Rule set"


class AlertKind(models.TextChoices):
    GUARD_LEVEL = "guard_level", "Guard level changed"
    LIQUIDATION_SCHEDULED = "liquidation_scheduled", "Liquidation scheduled"
    LIQUIDATION_CANCELLED = "liquidation_cancelled", "Liquidation cancelled"
    LIQUIDATION_STARTED = "liquidation_started", "Liquidation started"
    HALTED = "halted", "Account halted"
    HALTED_POSITION = "halted_position", "Position appeared while halted"
    MARKET_MARKED = "market_marked", "Positions marked for close by the market guard"
    CLOSE_SENT = "close_sent", "Close order sent"
    CLOSE_CONFIRMED = "close_confirmed", "Close confirmed"
    CLOSE_FAILED = "close_failed", "Close failed"
    CLOSE_UNRESOLVED = "close_unresolved", "Close outcome unknown"
    SNAPSHOT_STALE = "snapshot_stale", "Waiting for a fresh snapshot"
    PEAK_ADJUSTED = "peak_adjusted", "Peak equity adjusted for a deposit/withdrawal"
    BALANCE_ADJUSTED = "balance_adjusted", "Peak and day anchor moved by a balance operation"
    GUARDS_FAILED = "guards_failed", "The guards failed on a reading"
    RESET = "reset", "Guard reset"
    RULE_LEVEL = "rule_level", "Rule-set level changed"
    RULE_BREACH = "rule_breach", "Rule-set limit breached"
    OBJECTIVES_MET = "objectives_met", "Rule-set objectives met"


class GuardAlert(models.Model):
    """One audit record. `created_at` is set by the service (the scenario runner's virtual clock in replays)."""

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="guard_alerts"
    )
    kind = models.CharField(max_length=24, choices=AlertKind.choices, db_index=True)
    guard = models.CharField(max_length=16, choices=Guard.choices, db_index=True)
    level = models.CharField(max_length=8, choices=Level.choices, blank=True)
    value = models.DecimalField(**_PERCENT, null=True, blank=True)
    ticket = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    symbol = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=255)
    detail = models.JSONField(default=dict, blank=True)
    intent = models.ForeignKey(
        "guards.CloseIntent", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    seq = models.BigIntegerField(
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="Position in the alert ledger, given after commit in commit order (guards.services.ledger).",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="guardalert_account_recent"),
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="guardalert_unsequenced"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_id}: {self.message}"


class BalanceOperationType(models.IntegerChoices):
    BALANCE = 2, "Balance (deposit / withdrawal)"
    CREDIT = 3, "Credit"
    BONUS = 6, "Bonus"


class BalanceOperation(models.Model):
    """A balance operation (deal type BALANCE, CREDIT or BONUS) as the guards applied it to the peak and the day
    anchor. One row per deal ticket: the unique constraint is what makes each apply exactly once, however often
    overlapping history windows return the deal. `applied` is false for operations already inside the equity the
    peak started from (the first reading of the account)."""

    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="balance_operations"
    )
    deal_ticket = models.PositiveBigIntegerField()
    deal_type = models.PositiveSmallIntegerField(choices=BalanceOperationType.choices)
    amount = models.DecimalField(**_MONEY)
    deal_time = models.DateTimeField()
    comment = models.CharField(max_length=64, blank=True)
    applied = models.BooleanField()
    peak_before = models.DecimalField(**_MONEY, null=True, blank=True)
    peak_after = models.DecimalField(**_MONEY, null=True, blank=True)
    day_anchor_before = models.DecimalField(**_MONEY, null=True, blank=True)
    day_anchor_after = models.DecimalField(**_MONEY, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-deal_time", "-deal_ticket"]
        constraints = [
            models.UniqueConstraint(fields=["account", "deal_ticket"], name="balanceop_once_per_deal"),
        ]

    def __str__(self) -> str:
        return f"{self.get_deal_type_display()} {self.amount} on {self.account_id} (deal #{self.deal_ticket})"


class CloseTrigger(models.TextChoices):
    DRAWDOWN = "drawdown", "Drawdown guard"
    DAILY_LOSS = "daily_loss", "Daily-loss guard"
    MARKET = "market", "Market guard"
    HALTED = "halted", "Position opened while halted"
    OPERATOR = "operator", "Operator"
    API = "api", "API"
    RULES = "rules", "Rule-set breach"


class IntentState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    UNRESOLVED = "unresolved", "Unresolved (outcome unknown)"


OPEN_INTENT_STATES = (IntentState.PENDING, IntentState.SENT, IntentState.UNRESOLVED)


class CloseIntent(BaseModel):
    """The wish to close one position, stored before anything is sent. One row per idempotency key."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="close_intents"
    )
    ticket = models.PositiveBigIntegerField()
    symbol = models.CharField(max_length=32, blank=True)
    trigger = models.CharField(max_length=16, choices=CloseTrigger.choices)
    trigger_key = models.CharField(max_length=160)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=12, choices=IntentState.choices, default=IntentState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Times the service drove this intent.")
    order_sends = models.PositiveIntegerField(
        default=0, help_text="order_send calls made (counted before each)."
    )
    price_retries = models.PositiveIntegerField(default=0)
    filling_mode = models.SmallIntegerField(
        null=True, blank=True, help_text="ORDER_FILLING_* of the last request."
    )
    fillings_tried = models.JSONField(default=list, blank=True)
    last_retcode = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(
        default=1, help_text="Attempt number for this position under this trigger (a retry is a new intent)."
    )
    retry_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="retried_by",
        help_text="The failed attempt this one retries (at most one retry per failed attempt).",
    )
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Failed: when the next attempt is due. Open: when to read the terminal again. "
        "Empty: nothing scheduled.",
    )
    absent_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="First read (connected terminal, no closing deal) that did not find the position.",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="closeintent_state_updated"),
            models.Index(
                fields=["retry_at"], name="closeintent_retry_due", condition=Q(retry_at__isnull=False)
            ),
            models.Index(fields=["account", "ticket"], name="closeintent_account_ticket"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in IntentState]), name="closeintent_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"close #{self.ticket} ({self.trigger}) {self.state}"

    @property
    def is_final(self) -> bool:
        return self.state in (IntentState.CONFIRMED, IntentState.FAILED)


MANUAL_CLOSE_KEY_HOURS = 24


class ManualCloseRequest(BaseModel):
    """One client's request to close a position (ticket) or every position (ticket empty), keyed by the client's
    Idempotency-Key: the same key with the same request replays `response`, with another request it is refused.
    Keys live MANUAL_CLOSE_KEY_HOURS; the intents it created are the lasting record (trigger_key links them)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="manual_close_requests"
    )
    idempotency_key = models.CharField(max_length=128)
    request_fingerprint = models.CharField(max_length=64)
    ticket = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty: close every position.")
    trigger = models.CharField(max_length=16, choices=CloseTrigger.choices)
    trigger_key = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=255, blank=True)
    response = models.JSONField(default=dict, blank=True, help_text="The first answer, replayed for the key.")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="uniq_manualclose_user_key")
        ]

    def __str__(self) -> str:
        target = f"#{self.ticket}" if self.ticket is not None else "all positions"
        return f"manual close of {target} on {self.account_id} ({self.idempotency_key})"
