"""Input and output shapes of the reconciliation API. Inputs turn JSON into typed values and reject anything
malformed (including unknown keys, so a misspelt `stop_loss` is an error, not silently ignored)."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from reconciliation.models import BotTrade, ReconciliationEvent


class _StrictSerializer(serializers.Serializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(dict.fromkeys(unknown, "Unknown field."))
        return attrs


_POSITIVE = Decimal("0.00000001")


class BotTradeRegisterInputSerializer(_StrictSerializer):
    signal_id = serializers.CharField(max_length=64)
    approval_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    leg = serializers.IntegerField(min_value=1, max_value=32767, required=False, default=1)
    symbol = serializers.RegexField(r"^[A-Za-z0-9._#+-]{1,32}$", max_length=32)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    volume = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"))
    entry_price = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=_POSITIVE)
    sl = serializers.DecimalField(
        max_digits=20, decimal_places=8, min_value=Decimal(0), required=False, allow_null=True, default=None
    )
    tp = serializers.DecimalField(
        max_digits=20, decimal_places=8, min_value=Decimal(0), required=False, allow_null=True, default=None
    )
    ticket = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    magic = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    tag = serializers.CharField(max_length=31, required=False, allow_blank=True, default="")


class BotTradeCloseInputSerializer(_StrictSerializer):
    signal_id = serializers.CharField(max_length=64)
    leg = serializers.IntegerField(min_value=1, max_value=32767, required=False, default=1)
    closed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class BotTradeListFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "closed"], required=False)


class BotTradeOutputSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = BotTrade
        fields = [
            "id",
            "account",
            "signal_id",
            "approval_id",
            "leg",
            "symbol",
            "side",
            "volume",
            "entry_price",
            "sl",
            "tp",
            "ticket",
            "magic",
            "tag",
            "status",
            "closed_at",
            "closed_by",
            "matched_ticket",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EventListFilterSerializer(serializers.Serializer):
    account = serializers.IntegerField(required=False, min_value=1)
    state = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"], required=False)


class EventNoteInputSerializer(_StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class EventOutputSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    bot_trade = serializers.IntegerField(source="bot_trade_id", allow_null=True)
    present = serializers.BooleanField(source="is_present")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None)

    class Meta:
        model = ReconciliationEvent
        fields = [
            "id",
            "account",
            "kind",
            "bot_trade",
            "ticket",
            "symbol",
            "detail",
            "state",
            "present",
            "first_seen_at",
            "last_seen_at",
            "gone_at",
            "occurrences",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "note",
        ]
        read_only_fields = fields
