"""Input and output shapes of the risk API. Ranges are checked by the service (one set of messages for the API
and the admin); these serializers only turn JSON into typed values, so text where a number belongs is a 400."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.api.serializers import StrictInputSerializer
from risk.models import RiskConfigVersion, TradeSetupRiskLog


def _positive_price(value: Decimal) -> None:
    if value <= 0:
        raise serializers.ValidationError("Must be a positive price.")


class RiskConfigUpdateInputSerializer(StrictInputSerializer):
    risk_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    entry_splits = serializers.ListField(child=serializers.DecimalField(max_digits=5, decimal_places=2))
    margin_buffer_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    max_snapshot_age_seconds = serializers.IntegerField()
    reason = serializers.CharField(max_length=1000)


class RiskConfigValuesSerializer(serializers.Serializer):
    risk_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    entry_splits = serializers.ListField(child=serializers.CharField())
    margin_buffer_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    max_snapshot_age_seconds = serializers.IntegerField()


class RiskConfigOutputSerializer(RiskConfigValuesSerializer):
    version = serializers.IntegerField()
    changed_by = serializers.CharField(source="changed_by.username", default=None, allow_null=True)
    changed_at = serializers.DateTimeField()
    reason = serializers.CharField()


class RiskConfigHistoryOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    changed_by = serializers.CharField(source="changed_by.username", default=None, allow_null=True)
    changed_at = serializers.DateTimeField()
    reason = serializers.CharField()
    old = serializers.SerializerMethodField()
    new = serializers.SerializerMethodField()
    changed = serializers.SerializerMethodField()

    def get_old(self, obj: RiskConfigVersion) -> dict[str, Any] | None:
        return None if obj.previous is None else obj.previous.values

    def get_new(self, obj: RiskConfigVersion) -> dict[str, Any]:
        return obj.values

    def get_changed(self, obj: RiskConfigVersion) -> list[str]:
        old = {} if obj.previous is None else obj.previous.values
        return [name for name, value in obj.values.items() if old.get(name) != value]


class TradeSetupSizeInputSerializer(StrictInputSerializer):
    symbol = serializers.CharField(max_length=64)
    side = serializers.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")])
    entries = serializers.ListField(
        child=serializers.DecimalField(max_digits=20, decimal_places=10, validators=[_positive_price]),
        min_length=1,
        max_length=3,
    )
    sl = serializers.DecimalField(max_digits=20, decimal_places=10, validators=[_positive_price])


class TradeSetupSizeOutputSerializer(serializers.Serializer):
    log_id = serializers.IntegerField(source="pk")
    account = serializers.IntegerField(source="account_id")
    config_version = serializers.IntegerField(source="config.version")
    approved = serializers.BooleanField()
    reason = serializers.SerializerMethodField()
    result = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def get_reason(self, obj: TradeSetupRiskLog) -> str | None:
        return obj.reason or None
