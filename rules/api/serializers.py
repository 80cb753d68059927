"""Input and output shapes of the rules API. Field names are the model's (flat), so a field error names the field
the client sent. Ranges, choices, the time zone and the reset time are checked by the service (one set of messages
for the API, the admin and the case file); these serializers only turn JSON into typed values."""

from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from core.api.serializers import StrictInputSerializer
from rules.models import AccountRuleSet, AccountRuleSetChange, RuleSet, RuleSetChange

_PERCENT: dict[str, Any] = {"max_digits": 12, "decimal_places": 4}


class RuleSetTermsInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(allow_blank=True, required=False)
    kind = serializers.CharField(max_length=16, required=False, help_text="limits (default) or classic.")
    timezone = serializers.CharField(max_length=64, required=False, help_text="IANA name; default UTC.")
    reset_time = serializers.CharField(max_length=16, required=False, help_text="HH:MM; default 00:00.")
    daily_loss_percent = serializers.DecimalField(**_PERCENT, allow_null=True, required=False)
    daily_loss_of = serializers.CharField(
        max_length=16, required=False, help_text="initial (default) or base."
    )
    daily_loss_base = serializers.CharField(
        max_length=16, required=False, help_text="balance, equity or max."
    )
    max_loss_percent = serializers.DecimalField(**_PERCENT, allow_null=True, required=False)
    max_loss_mode = serializers.CharField(
        max_length=24, required=False, help_text="static, eod_trailing or intraday_trailing."
    )
    max_loss_lock_at_initial = serializers.BooleanField(required=False)
    profit_target_percent = serializers.DecimalField(**_PERCENT, allow_null=True, required=False)
    min_trading_days = serializers.IntegerField(required=False)
    best_day_percent = serializers.DecimalField(**_PERCENT, allow_null=True, required=False)
    warn_at_percent_used = serializers.DecimalField(**_PERCENT, required=False)
    close_only_on_warning = serializers.BooleanField(required=False)
    reason = serializers.CharField(max_length=1000)


class RuleSetCreateInputSerializer(RuleSetTermsInputSerializer):
    preset = serializers.CharField(
        max_length=16,
        required=False,
        help_text="Start from this preset's terms; the fields given override them.",
    )


class RuleSetOutputSerializer(serializers.ModelSerializer):
    preset = serializers.CharField(help_text="The preset it started from; empty for a custom rule set.")

    class Meta:
        model = RuleSet
        fields = (
            "id",
            "name",
            "description",
            "preset",
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
            "revision",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ChangeOutputSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    changed_by = serializers.CharField(source="changed_by.username", default=None, allow_null=True)
    changed_at = serializers.DateTimeField()
    reason = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField()
    changed = serializers.SerializerMethodField()

    def get_changed(self, obj: RuleSetChange | AccountRuleSetChange) -> list[str]:
        old = obj.old or {}
        return [name for name, value in obj.new.items() if old.get(name) != value]


class PresetOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    terms = serializers.JSONField()


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a zone only: a time without one is refused, never read in the server's zone."""

    default_error_messages = {"naive": "Give a time with a zone, e.g. 2026-03-02T07:00:00Z."}

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.utcoffset() is None:
                self.fail("naive")
        return super().to_internal_value(value)


class AccountRuleSetAssignInputSerializer(StrictInputSerializer):
    rule_set = serializers.IntegerField(help_text="Id of the rule set.")
    initial_balance = serializers.DecimalField(max_digits=20, decimal_places=2)
    start = AwareDateTimeField(required=False, help_text="Default: now. ISO 8601 with a zone.")
    reason = serializers.CharField(max_length=1000)


class AccountRuleSetOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    assigned = serializers.BooleanField()
    rule_set = RuleSetOutputSerializer(allow_null=True)
    initial_balance = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    start = serializers.DateTimeField(allow_null=True)
    revision = serializers.IntegerField(allow_null=True)
    assigned_by = serializers.CharField(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)

    @staticmethod
    def shape(*, account_id: int, row: AccountRuleSet | None) -> dict[str, Any]:
        if row is None:
            return {
                "account": account_id,
                "assigned": False,
                "rule_set": None,
                "initial_balance": None,
                "start": None,
                "revision": None,
                "assigned_by": None,
                "assigned_at": None,
            }
        return {
            "account": account_id,
            "assigned": True,
            "rule_set": row.rule_set,
            "initial_balance": row.initial_balance,
            "start": row.start,
            "revision": row.revision,
            "assigned_by": row.assigned_by.username if row.assigned_by else None,
            "assigned_at": row.assigned_at,
        }


class CloseOnlyLiftInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=1000)


class CloseOnlyLiftOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField(source="account_id")
    close_only = serializers.BooleanField()
    close_only_lifted_at = serializers.DateTimeField()
    close_only_lifted_by = serializers.CharField(source="close_only_lifted_by.username")
    close_only_lift_reason = serializers.CharField()
