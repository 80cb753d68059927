"""Input and output shapes of the reconciliation API. Inputs turn JSON into typed values and reject anything
malformed (including unknown keys, so a misspelt `stop_loss` is an error, not silently ignored)."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.api.serializers import StrictInputSerializer
from reconciliation.models import BotTrade, EventKind, EventState, LivePosition, ReconciliationEvent

_POSITIVE = Decimal("0.00000001")


class BotTradeRegisterInputSerializer(StrictInputSerializer):
    signal_id = serializers.CharField(max_length=64)
    approval_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    leg = serializers.IntegerField(min_value=1, max_value=32767, required=False, default=1)
    symbol = serializers.RegexField(r"^[A-Za-z0-9._#+-]{1,32}$", max_length=32)
    side = serializers.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")])
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


class BotTradeCloseInputSerializer(StrictInputSerializer):
    signal_id = serializers.CharField(max_length=64)
    leg = serializers.IntegerField(min_value=1, max_value=32767, required=False, default=1)
    closed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class BotTradeListFilterSerializer(StrictInputSerializer):
    status = serializers.ChoiceField(choices=["open", "closed"], required=False)
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


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


class EventListFilterSerializer(StrictInputSerializer):
    account = serializers.IntegerField(required=False, min_value=1)
    state = serializers.ChoiceField(choices=EventState.choices, required=False)
    kind = serializers.ChoiceField(choices=EventKind.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Events seen at or after this time.")
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


class EventNoteInputSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class EventOutputSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    bot_trade = serializers.IntegerField(source="bot_trade_id", allow_null=True)
    present = serializers.BooleanField(source="is_present")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None, allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None, allow_null=True)

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


class LivePositionOutputSerializer(serializers.ModelSerializer):
    bot_trade = BotTradeOutputSerializer(allow_null=True)
    divergences = serializers.SerializerMethodField()

    class Meta:
        model = LivePosition
        fields = [
            "ticket",
            "symbol",
            "canonical_symbol",
            "side",
            "volume",
            "price_open",
            "price_current",
            "sl",
            "tp",
            "profit",
            "swap",
            "magic",
            "comment",
            "opened_at",
            "last_seen_at",
            "match_method",
            "bot_trade",
            "divergences",
        ]
        read_only_fields = fields

    def get_divergences(self, obj: LivePosition) -> list[dict[str, Any]]:
        """Open divergence events of this position (kind, state, detail)."""
        return [
            {"event_id": e.pk, "kind": e.kind, "state": e.state, "detail": e.detail}
            for e in self.context.get("divergences", {}).get(obj.ticket, [])
        ]


class PositionTotalsOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    floating_profit = serializers.DecimalField(max_digits=20, decimal_places=2)
    floating_profit_percent_of_balance = serializers.DecimalField(
        max_digits=12, decimal_places=4, allow_null=True
    )
    balance = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_null=True)


class PositionListOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    synced_at = serializers.DateTimeField(allow_null=True)
    totals = PositionTotalsOutputSerializer()
    positions = LivePositionOutputSerializer(many=True)


class SyncOutputSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True, source="error_message")


class ReconciliationCountsOutputSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    unmatched = serializers.IntegerField()
    missing = serializers.IntegerField()
    open_divergences = serializers.IntegerField()


class ReconciliationStatusOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    last_sync = SyncOutputSerializer(allow_null=True)
    counts = ReconciliationCountsOutputSerializer()
    recent_events = EventOutputSerializer(many=True)
