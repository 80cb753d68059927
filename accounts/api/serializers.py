"""Input and output shapes of the accounts API (/me/, accounts, snapshot history)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from rest_framework import serializers

from accounts.models import AccountHealth, AccountSnapshot, AccountStatus, TradingAccount
from accounts.selectors import SNAPSHOT_HISTORY_MAX_DAYS, SNAPSHOT_HISTORY_MAX_POINTS
from core.api.serializers import StrictInputSerializer

_MONEY = {"max_digits": 20, "decimal_places": 2}


class MeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    role = serializers.CharField(allow_null=True)
    roles = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())
    account_ids = serializers.ListField(child=serializers.IntegerField())


class SnapshotOutputSerializer(serializers.ModelSerializer):
    age_seconds = serializers.SerializerMethodField()
    fresh = serializers.SerializerMethodField()

    class Meta:
        model = AccountSnapshot
        fields = [
            "id",
            "taken_at",
            "server_time",
            "server_utc_offset_seconds",
            "balance",
            "credit",
            "profit",
            "equity",
            "margin",
            "margin_free",
            "margin_level",
            "leverage",
            "currency",
            "age_seconds",
            "fresh",
        ]
        read_only_fields = fields

    def get_age_seconds(self, obj: AccountSnapshot) -> float:
        return round(obj.age_seconds, 3)

    def get_fresh(self, obj: AccountSnapshot) -> bool:
        return obj.age_seconds <= settings.ACCOUNT_SNAPSHOT_STALE_SECONDS


class HealthOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccountHealth
        fields = [
            "connected",
            "trade_allowed",
            "tradeapi_disabled",
            "ping_ms",
            "newest_tick_age_seconds",
            "circuit_state",
            "error",
            "checked_at",
        ]
        read_only_fields = fields


class GuardSummaryOutputSerializer(serializers.Serializer):
    state = serializers.CharField()
    halted = serializers.BooleanField()
    drawdown_level = serializers.CharField()
    drawdown_percent = serializers.DecimalField(max_digits=9, decimal_places=4, allow_null=True)
    daily_loss_level = serializers.CharField()
    daily_loss_percent = serializers.DecimalField(max_digits=9, decimal_places=4, allow_null=True)


def _related(obj: TradingAccount, name: str) -> Any:
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


class AccountOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    latest_snapshot = SnapshotOutputSerializer(allow_null=True)
    health = serializers.SerializerMethodField()
    margin_mode = serializers.SerializerMethodField()
    guard = serializers.SerializerMethodField()

    class Meta:
        model = TradingAccount
        fields = [
            "id",
            "login",
            "server",
            "broker_company",
            "label",
            "status",
            "backend",
            "owner",
            "latest_snapshot",
            "health",
            "margin_mode",
            "guard",
        ]
        read_only_fields = fields

    def get_health(self, obj: TradingAccount) -> dict[str, Any] | None:
        health = _related(obj, "health")
        return None if health is None else HealthOutputSerializer(health).data

    def get_margin_mode(self, obj: TradingAccount) -> str | None:
        """hedging / netting / exchange, as the terminal last reported it (null until known)."""
        return getattr(obj, "margin_mode", None) or None

    def get_guard(self, obj: TradingAccount) -> dict[str, Any]:
        state = _related(obj, "guard_state")
        return GuardSummaryOutputSerializer(
            {
                "state": state.status if state else "normal",
                "halted": bool(state and state.is_halted),
                "drawdown_level": state.drawdown_level if state else "normal",
                "drawdown_percent": state.drawdown_percent if state else None,
                "daily_loss_level": state.daily_loss_level if state else "normal",
                "daily_loss_percent": state.daily_loss_percent if state else None,
            }
        ).data


class AccountListFilterSerializer(StrictInputSerializer):
    status = serializers.ChoiceField(choices=AccountStatus.choices, required=False)
    server = serializers.CharField(max_length=128, required=False)
    search = serializers.CharField(max_length=128, required=False, help_text="Label, server or login.")
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


class SnapshotHistoryFilterSerializer(StrictInputSerializer):
    since = serializers.DateTimeField(required=False, help_text="Default: 24 hours before `until`.")
    until = serializers.DateTimeField(required=False, help_text="Default: now.")
    step = serializers.IntegerField(
        min_value=1,
        max_value=86_400,
        required=False,
        help_text=f"Seconds per point; default: the range in at most {SNAPSHOT_HISTORY_MAX_POINTS} points.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - timedelta(hours=24)
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be before until."]})
        span = (until - since).total_seconds()
        if span > SNAPSHOT_HISTORY_MAX_DAYS * 86_400:
            raise serializers.ValidationError(
                {"since": [f"At most {SNAPSHOT_HISTORY_MAX_DAYS} days at once."]}
            )
        step = attrs.get("step") or max(1, int(-(-span // SNAPSHOT_HISTORY_MAX_POINTS)))
        if span / step > SNAPSHOT_HISTORY_MAX_POINTS:
            raise serializers.ValidationError(
                {"step": [f"Too small for this range: at most {SNAPSHOT_HISTORY_MAX_POINTS} points."]}
            )
        return {"since": since, "until": until, "step": step}


class SnapshotPointOutputSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField()
    server_time = serializers.DateTimeField()
    balance = serializers.DecimalField(**_MONEY)
    equity = serializers.DecimalField(**_MONEY)
    equity_min = serializers.DecimalField(**_MONEY)
    equity_max = serializers.DecimalField(**_MONEY)
    margin = serializers.DecimalField(**_MONEY)
    margin_level = serializers.DecimalField(max_digits=20, decimal_places=4)
    profit = serializers.DecimalField(**_MONEY)
    samples = serializers.IntegerField()


class SnapshotHistoryOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    step = serializers.IntegerField()
    points = SnapshotPointOutputSerializer(many=True)
