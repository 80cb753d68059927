"""Rule sets (owner configuration with history) and their assignment to trading accounts.

Decisions:
* A `RuleSet` row holds the terms in force; an edit changes the row, bumps `revision` and writes one
  `RuleSetChange` (who, when, why, old → new values as JSON), in one transaction under a row lock: the history is
  the change rows, and "the rule set at revision n" is the `new` of its n-th change. (The risk configuration keeps
  whole immutable versions because one global row is read by every sizing; here accounts follow their rule set's
  current terms, and the evaluation state records the revision it last saw.)
* An account has at most one rule set (`AccountRuleSet`, primary key = the account) with its initial balance and
  start. Every assignment or change is an `AccountRuleSetChange`; a change applies from the account's next snapshot
  (the live state notices the new `revision` and starts again from the new terms).
* Kind `classic` means "no funded-account limits": the account keeps the drawdown and daily-loss guards of the guard
  settings, exactly like an account without a rule set. Its limit fields are ignored.
* Field validation is `rules.evaluation.validate_rule_terms` (the case file's own), through
  `rules.services.rule_set_validate`, so the admin, the API and `rules_case` say the same thing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q

from rules import evaluation
from rules.presets import KIND_CLASSIC, KIND_LIMITS, PRESETS

_PERCENT: dict[str, Any] = {"max_digits": 7, "decimal_places": 4}
_MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 2}


class RuleSetKind(models.TextChoices):
    LIMITS = KIND_LIMITS, "Funded-account limits (this rule set)"
    CLASSIC = KIND_CLASSIC, "Classic guards (drawdown and daily loss from the guard settings)"


class DailyLossOf(models.TextChoices):
    INITIAL = evaluation.OF_INITIAL, "the initial balance"
    BASE = evaluation.OF_BASE, "the day base"


class DailyLossBase(models.TextChoices):
    BALANCE = evaluation.BASE_BALANCE, "balance at the reset"
    EQUITY = evaluation.BASE_EQUITY, "equity at the reset"
    MAX = evaluation.BASE_MAX, "the higher of balance and equity at the reset"


class MaxLossMode(models.TextChoices):
    STATIC = evaluation.MODE_STATIC, "static (from the initial balance)"
    EOD_TRAILING = evaluation.MODE_EOD_TRAILING, "end-of-day trailing (highest balance at a reset)"
    INTRADAY_TRAILING = evaluation.MODE_INTRADAY_TRAILING, "intraday trailing (highest equity)"


PRESET_CHOICES = [(key, preset["name"]) for key, preset in PRESETS.items()]

# The terms of a rule set, in form order: the same names are the API's and a preset's keys.
TERM_FIELDS: tuple[str, ...] = (
    "kind",
    "timezone",
    "reset_time",
    "daily_loss_percent",
    "daily_loss_of",
    "daily_loss_base",
    "max_loss_percent",
    "max_loss_mode",
    "max_loss_lock_at_initial",
    "profit_target_percent",
    "min_trading_days",
    "best_day_percent",
    "warn_at_percent_used",
    "close_only_on_warning",
)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class RuleSet(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    preset = models.CharField(
        max_length=16,
        choices=PRESET_CHOICES,
        blank=True,
        editable=False,
        help_text="The preset it started from.",
    )
    kind = models.CharField(max_length=8, choices=RuleSetKind.choices, default=RuleSetKind.LIMITS)
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA time zone of the day boundaries, e.g. Europe/Prague."
    )
    reset_time = models.CharField(
        max_length=5, default="00:00", help_text="HH:MM, local time in the zone, when a new day starts."
    )
    daily_loss_percent = models.DecimalField(
        **_PERCENT, null=True, blank=True, help_text="Empty: no daily loss limit."
    )
    daily_loss_of = models.CharField(max_length=8, choices=DailyLossOf.choices, default=DailyLossOf.INITIAL)
    daily_loss_base = models.CharField(
        max_length=8, choices=DailyLossBase.choices, default=DailyLossBase.BALANCE
    )
    max_loss_percent = models.DecimalField(
        **_PERCENT,
        null=True,
        blank=True,
        help_text="Percent of the initial balance. Empty: no maximum loss limit.",
    )
    max_loss_mode = models.CharField(max_length=20, choices=MaxLossMode.choices, default=MaxLossMode.STATIC)
    max_loss_lock_at_initial = models.BooleanField(
        default=True, help_text="Trailing modes: the limit never rises above the initial balance."
    )
    profit_target_percent = models.DecimalField(
        **_PERCENT, null=True, blank=True, help_text="Empty: no profit target (never passed)."
    )
    min_trading_days = models.PositiveSmallIntegerField(default=0)
    best_day_percent = models.DecimalField(
        **_PERCENT, null=True, blank=True, help_text="Largest share of the closed profit one day may hold."
    )
    warn_at_percent_used = models.DecimalField(
        **_PERCENT, default=Decimal(80), help_text="Warning when either limit is used this much (percent)."
    )
    close_only_on_warning = models.BooleanField(
        default=False,
        help_text="At the warning level the account becomes close-only: sizing refuses new setups.",
    )
    revision = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_loss_percent__isnull=True) | Q(daily_loss_percent__gt=0),
                name="ruleset_daily_percent_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_loss_percent__isnull=True) | Q(max_loss_percent__gt=0),
                name="ruleset_max_loss_percent_positive",
            ),
            models.CheckConstraint(
                condition=Q(warn_at_percent_used__gt=0, warn_at_percent_used__lte=100),
                name="ruleset_warn_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_classic(self) -> bool:
        return self.kind == RuleSetKind.CLASSIC

    @property
    def terms(self) -> dict[str, Any]:
        """The terms as JSON-ready values (history rows, API)."""
        return {"name": self.name, "description": self.description} | {
            name: jsonable(getattr(self, name)) for name in TERM_FIELDS
        }

    def as_rules(self, *, initial_balance: Decimal, start: datetime) -> evaluation.RuleSet | None:
        """The pure evaluation's rule set for an account; None for `classic` (no rule-set limits)."""
        if self.is_classic:
            return None
        return evaluation.RuleSet(
            initial_balance=Decimal(initial_balance),
            start=start,
            timezone=self.timezone,
            reset_time=evaluation.parse_reset_time(self.reset_time),
            daily_loss=None
            if self.daily_loss_percent is None
            else evaluation.DailyLoss(
                percent=Decimal(self.daily_loss_percent), of=self.daily_loss_of, base=self.daily_loss_base
            ),
            max_loss=None
            if self.max_loss_percent is None
            else evaluation.MaxLoss(
                percent=Decimal(self.max_loss_percent),
                mode=self.max_loss_mode,
                lock_at_initial=self.max_loss_lock_at_initial,
            ),
            profit_target_percent=None
            if self.profit_target_percent is None
            else Decimal(self.profit_target_percent),
            min_trading_days=self.min_trading_days,
            best_day_percent=None if self.best_day_percent is None else Decimal(self.best_day_percent),
            warn_at_percent_used=Decimal(self.warn_at_percent_used),
        )


def _term_label(name: str) -> str:
    try:
        return str(RuleSet._meta.get_field(name).verbose_name).capitalize()
    except FieldDoesNotExist:
        return name.replace("_", " ").capitalize()


class RuleSetChange(models.Model):
    """One edit of a rule set (or its creation: `old` empty), with who, when and why."""

    rule_set = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="changes")
    revision = models.PositiveIntegerField()
    old = models.JSONField(
        null=True, blank=True, help_text="The terms before; empty when the rule set was created."
    )
    new = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for the presets installed by the migration.",
    )
    changed_at = models.DateTimeField(db_index=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-changed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["rule_set", "revision"], name="rulesetchange_once_per_revision"),
            models.CheckConstraint(condition=~Q(reason=""), name="rulesetchange_reason_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_set} r{self.revision}"

    @property
    def changed_fields(self) -> list[str]:
        old = self.old or {}
        return [name for name, value in self.new.items() if old.get(name) != value]

    @property
    def diff(self) -> list[tuple[str, Any, Any]]:
        """(label, old, new) for each term this edit changed (the description left out); empty for the creation."""
        if self.old is None:
            return []
        return [
            (_term_label(name), self.old.get(name), self.new[name])
            for name in self.changed_fields
            if name != "description"
        ]


class AccountRuleSet(models.Model):
    """The rule set an account trades under, with its initial balance and start."""

    account = models.OneToOneField(
        "accounts.TradingAccount",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="rule_set_assignment",
    )
    rule_set = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="assignments")
    initial_balance = models.DecimalField(
        **_MONEY, help_text="The balance the programme started the account with."
    )
    start = models.DateTimeField(
        help_text="When the evaluation starts (its first day contains this instant)."
    )
    revision = models.PositiveIntegerField(default=1, editable=False)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField()

    class Meta:
        verbose_name = "account rule set"
        constraints = [
            models.CheckConstraint(
                condition=Q(initial_balance__gt=0), name="accountruleset_initial_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.rule_set}"

    @property
    def terms(self) -> dict[str, Any]:
        return {
            "rule_set": self.rule_set_id,
            "rule_set_name": self.rule_set.name,
            "initial_balance": jsonable(self.initial_balance),
            "start": jsonable(self.start),
        }


class AccountRuleSetChange(models.Model):
    """One assignment of a rule set to an account or change of it (`old` empty: the first assignment)."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveIntegerField()
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(db_index=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = "account rule set change"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "revision"], name="accountrulesetchange_once_per_revision"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="accountrulesetchange_reason_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} r{self.revision}: {self.new.get('rule_set_name', '')}"


class RulesStatus(models.TextChoices):
    ACTIVE = evaluation.STATUS_ACTIVE, "Active"
    PASSED = evaluation.STATUS_PASSED, "Objectives met"
    BREACHED = evaluation.STATUS_BREACHED, "Breached"


class RulesLevel(models.TextChoices):
    NORMAL = evaluation.LEVEL_NORMAL, "Normal"
    WARNING = evaluation.LEVEL_WARNING, "Warning"
    BREACHED = evaluation.LEVEL_BREACHED, "Breached"


class AccountRulesState(models.Model):
    """The live evaluation of an account's rule set (one row per account, written by `rules.services.live` on every
    fresh snapshot, read with the guard state in the same query). `state` is `rules.tracking.state_to_json`, `book`
    the open trades and the deal tickets applied; the headroom columns are copies for the pages and SQL sorting."""

    account = models.OneToOneField(
        "accounts.TradingAccount", on_delete=models.CASCADE, primary_key=True, related_name="rules_state"
    )
    assignment_revision = models.PositiveIntegerField(
        help_text="The assignment revision this state was built for."
    )
    rule_set_revision = models.PositiveIntegerField()
    state = models.JSONField()
    book = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=8, choices=RulesStatus.choices, default=RulesStatus.ACTIVE, db_index=True
    )
    level = models.CharField(max_length=8, choices=RulesLevel.choices, default=RulesLevel.NORMAL)
    breach = models.JSONField(null=True, blank=True)
    daily_limit = models.DecimalField(**_MONEY, null=True, blank=True)
    permitted_loss_today = models.DecimalField(**_MONEY, null=True, blank=True)
    max_loss_limit = models.DecimalField(**_MONEY, null=True, blank=True)
    permitted_loss_total = models.DecimalField(**_MONEY, null=True, blank=True)
    headroom = models.DecimalField(
        **_MONEY,
        null=True,
        blank=True,
        help_text="min(permitted loss today, permitted total loss): what sizing caps at.",
    )
    daily_used_percent = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    total_used_percent = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    next_reset = models.DateTimeField(null=True, blank=True)
    trading_days = models.PositiveIntegerField(default=0)
    best_day_share = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    profit_target_met = models.BooleanField(null=True, blank=True)
    objectives_met_at = models.DateTimeField(null=True, blank=True)
    close_only = models.BooleanField(default=False, help_text="Sizing refuses new setups (close_only).")
    close_only_since = models.DateTimeField(null=True, blank=True)
    close_only_lifted_at = models.DateTimeField(null=True, blank=True)
    close_only_lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_only_lift_reason = models.TextField(blank=True)
    last_snapshot_id = models.BigIntegerField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "account rules state"
        permissions = [("lift_close_only", "Can lift an account's close-only state (with a reason)")]

    def __str__(self) -> str:
        return f"Rules state of {self.account_id}: {self.status}/{self.level}"
