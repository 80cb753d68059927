"""The owner's global risk configuration (immutable versions) and the trade-setup risk log.

Versioning model: one table of immutable `RiskConfigVersion` rows; the row with the highest `version` is the
configuration in force. An edit never updates a row, it inserts version n+1 pointing at version n (`previous`), so
"who, when, why, new values" are the row itself and "old values" are one join away (`previous`), never a copy.
The one-to-one `previous` link and the unique `version` make the history a single chain: two edits that both start
from version n cannot both commit.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from risk.sizing import (
    MARGIN_BUFFER_PERCENT_RANGE,
    MAX_SNAPSHOT_AGE_RANGE,
    RISK_PERCENT_RANGE,
    SizingConfig,
)


class RiskConfigVersion(models.Model):
    version = models.PositiveIntegerField(unique=True, editable=False)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next", editable=False
    )
    risk_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(RISK_PERCENT_RANGE[0]), MaxValueValidator(RISK_PERCENT_RANGE[1])],
        help_text="Percent of equity risked on one trade setup (0.1 to 50).",
    )
    entry_splits = models.JSONField(
        help_text='Percent of the risk budget per entry, 1 to 3 positive parts summing to 100, e.g. ["50", "35", "15"].'
    )
    margin_buffer_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[
            MinValueValidator(MARGIN_BUFFER_PERCENT_RANGE[0]),
            MaxValueValidator(MARGIN_BUFFER_PERCENT_RANGE[1]),
        ],
        help_text="Extra free margin required on top of the setup's margin, in percent (0 to 100).",
    )
    max_snapshot_age_seconds = models.PositiveIntegerField(
        validators=[
            MinValueValidator(MAX_SNAPSHOT_AGE_RANGE[0]),
            MaxValueValidator(MAX_SNAPSHOT_AGE_RANGE[1]),
        ],
        help_text="An account snapshot older than this is stale and is not sized (10 to 3600 s).",
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text="Empty for the spec defaults installed by the migration.",
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-version"]
        get_latest_by = "version"
        verbose_name = "risk configuration version"
        constraints = [
            models.CheckConstraint(
                condition=Q(version=1, previous__isnull=True) | Q(version__gt=1, previous__isnull=False),
                name="riskconfig_chain",
                violation_error_message="Only version 1 has no previous version.",
            ),
            models.CheckConstraint(
                condition=Q(risk_percent__gte=RISK_PERCENT_RANGE[0], risk_percent__lte=RISK_PERCENT_RANGE[1]),
                name="riskconfig_risk_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    margin_buffer_percent__gte=MARGIN_BUFFER_PERCENT_RANGE[0],
                    margin_buffer_percent__lte=MARGIN_BUFFER_PERCENT_RANGE[1],
                ),
                name="riskconfig_margin_buffer_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    max_snapshot_age_seconds__gte=MAX_SNAPSHOT_AGE_RANGE[0],
                    max_snapshot_age_seconds__lte=MAX_SNAPSHOT_AGE_RANGE[1],
                ),
                name="riskconfig_snapshot_age_range",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="riskconfig_reason_not_empty"),
        ]

    def __str__(self) -> str:
        return f"Risk configuration v{self.version}"

    @property
    def values(self) -> dict[str, Any]:
        """The four settings as JSON-ready values (Decimals as strings), for history and logs."""
        return {
            "risk_percent": str(self.risk_percent),
            "entry_splits": [str(part) for part in self.entry_splits],
            "margin_buffer_percent": str(self.margin_buffer_percent),
            "max_snapshot_age_seconds": self.max_snapshot_age_seconds,
        }

    def as_sizing_config(self) -> SizingConfig:
        return SizingConfig(
            risk_percent=Decimal(self.risk_percent),
            entry_splits=tuple(Decimal(str(part)) for part in self.entry_splits),
            margin_buffer_percent=Decimal(self.margin_buffer_percent),
            max_snapshot_age_seconds=self.max_snapshot_age_seconds,
        )


class TradeSetupRiskLog(models.Model):
    """One sizing request of the live flow: what was asked, under which configuration, and the answer."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.PROTECT, related_name="risk_logs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    config = models.ForeignKey(RiskConfigVersion, on_delete=models.PROTECT, related_name="risk_logs")
    inputs = models.JSONField(
        help_text="The setup, the account snapshot and the symbol terms from the terminal."
    )
    result = models.JSONField(
        null=True, blank=True, help_text="The sizing result; empty when sizing never ran."
    )
    approved = models.BooleanField()
    reason = models.CharField(max_length=32, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="risklog_account_recent")]
        permissions = [("size_any_account", "Can request position sizing for any trading account")]
        constraints = [
            models.CheckConstraint(
                condition=Q(approved=False) | Q(reason=""), name="risklog_approved_has_no_reason"
            )
        ]

    def __str__(self) -> str:
        verdict = "approved" if self.approved else f"rejected ({self.reason})"
        return f"Sizing on {self.account_id} at {self.created_at:%Y-%m-%d %H:%M:%S}Z: {verdict}"
