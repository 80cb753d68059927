"""Input and output shapes of the guards API (status, close intents, manual closes, the alert ledger)."""

from rest_framework import serializers

from core.api.serializers import StrictInputSerializer
from guards.models import CloseIntent, GuardAlert, IntentState

_PERCENT = {"max_digits": 9, "decimal_places": 4, "allow_null": True}
_MONEY = {"max_digits": 20, "decimal_places": 2, "allow_null": True}


class _DrawdownOutputSerializer(serializers.Serializer):
    percent = serializers.DecimalField(**_PERCENT)
    level = serializers.CharField()
    warning_percent = serializers.DecimalField(**_PERCENT)
    critical_percent = serializers.DecimalField(**_PERCENT)
    peak_equity = serializers.DecimalField(**_MONEY)
    peak_at = serializers.DateTimeField(allow_null=True)


class _DailyLossOutputSerializer(serializers.Serializer):
    percent = serializers.DecimalField(**_PERCENT)
    level = serializers.CharField()
    warning_percent = serializers.DecimalField(**_PERCENT)
    critical_percent = serializers.DecimalField(**_PERCENT)
    day_anchor = serializers.DecimalField(**_MONEY)
    broker_day = serializers.DateField(allow_null=True)


class _HeadroomOutputSerializer(serializers.Serializer):
    equity = serializers.DecimalField(**_MONEY)
    daily_loss_permitted = serializers.DecimalField(
        **_MONEY,
        help_text="What may still be lost today before the daily-loss guard trips (account currency).",
    )
    to_drawdown_limit = serializers.DecimalField(
        **_MONEY, help_text="Equity above the critical drawdown level (account currency)."
    )
    seconds_to_daily_reset = serializers.IntegerField(
        allow_null=True, help_text="Until the broker's trading day changes (trade-server midnight)."
    )


class _TripOutputSerializer(serializers.Serializer):
    guard = serializers.CharField(allow_blank=True)
    tripped_at = serializers.DateTimeField(allow_null=True)
    liquidate_at = serializers.DateTimeField(allow_null=True)
    seconds_to_liquidation = serializers.IntegerField(allow_null=True)
    halted_at = serializers.DateTimeField(allow_null=True)


class _MarketAlertOutputSerializer(serializers.Serializer):
    message = serializers.CharField()
    level = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()


class _MarketSymbolOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    level = serializers.CharField()
    marked_tickets = serializers.ListField(child=serializers.IntegerField())
    last_alert = _MarketAlertOutputSerializer(allow_null=True)


class _RulesOutputSerializer(serializers.Serializer):
    """The account's rule set (null without one): headroom first, then the objectives (shared/spec/rules.md)."""

    rule_set = serializers.CharField()
    rule_set_id = serializers.IntegerField()
    initial_balance = serializers.DecimalField(**_MONEY)
    start = serializers.DateTimeField()
    evaluated = serializers.BooleanField(help_text="False until the first snapshot under this assignment.")
    status = serializers.CharField(help_text="active, passed or breached.")
    level = serializers.CharField(help_text="normal, warning or breached.")
    breach = serializers.JSONField(allow_null=True)
    permitted_loss_today = serializers.DecimalField(**_MONEY)
    permitted_loss_total = serializers.DecimalField(**_MONEY)
    daily_limit = serializers.DecimalField(**_MONEY)
    max_loss_limit = serializers.DecimalField(**_MONEY)
    daily_used_percent = serializers.DecimalField(**_PERCENT)
    total_used_percent = serializers.DecimalField(**_PERCENT)
    headroom = serializers.DecimalField(**_MONEY)
    next_reset = serializers.DateTimeField(allow_null=True)
    close_only = serializers.BooleanField()
    trading_days = serializers.IntegerField()
    min_trading_days = serializers.IntegerField()
    profit_target_percent = serializers.DecimalField(**_PERCENT)
    profit_target_met = serializers.BooleanField(allow_null=True)
    best_day_share = serializers.DecimalField(**_PERCENT)
    best_day_percent = serializers.DecimalField(**_PERCENT)
    objectives_met_at = serializers.DateTimeField(allow_null=True)
    evaluated_at = serializers.DateTimeField(allow_null=True)


class _BindingOutputSerializer(serializers.Serializer):
    """Which limit binds: the smaller of the daily-loss guard's and the rule set's permitted loss today (and of the
    drawdown guard's and the rule set's overall), naming its source. A tie goes to the rule set."""

    today = serializers.DecimalField(
        **_MONEY, help_text="What may still be lost today before the binding daily limit (account currency)."
    )
    today_source = serializers.CharField(
        allow_blank=True, help_text="daily_loss_guard, rule_set, or empty when no daily limit is on."
    )
    today_source_label = serializers.CharField(
        allow_blank=True, help_text='"daily-loss guard" or "rule set <name>".'
    )
    total = serializers.DecimalField(
        **_MONEY, help_text="What may still be lost before the binding overall limit (account currency)."
    )
    total_source = serializers.CharField(allow_blank=True, help_text="drawdown_guard, rule_set, or empty.")
    total_source_label = serializers.CharField(allow_blank=True)
    next_reset = serializers.DateTimeField(
        allow_null=True, help_text="When the binding daily limit starts a new day (UTC)."
    )


class GuardStatusOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    state = serializers.CharField()
    halted = serializers.BooleanField()
    evaluated_at = serializers.DateTimeField(allow_null=True)
    drawdown = _DrawdownOutputSerializer()
    daily_loss = _DailyLossOutputSerializer()
    headroom = _HeadroomOutputSerializer()
    trip = _TripOutputSerializer()
    market = _MarketSymbolOutputSerializer(many=True)
    rules = _RulesOutputSerializer(allow_null=True)
    binding = _BindingOutputSerializer()


class CloseIntentOutputSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)

    class Meta:
        model = CloseIntent
        fields = [
            "id",
            "account",
            "ticket",
            "symbol",
            "trigger",
            "state",
            "actor",
            "attempts",
            "order_sends",
            "last_retcode",
            "last_error",
            "sent_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CloseIntentListFilterSerializer(StrictInputSerializer):
    state = serializers.ChoiceField(choices=IntentState.choices, required=False)
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


class ManualCloseInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class _PendingIntentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField()
    symbol = serializers.CharField(allow_blank=True)
    state = serializers.CharField()
    trigger = serializers.CharField()
    created_at = serializers.DateTimeField()


class ManualCloseOutputSerializer(serializers.Serializer):
    request_id = serializers.IntegerField()
    account = serializers.IntegerField()
    ticket = serializers.IntegerField(allow_null=True, help_text="Empty: every position.")
    intents = _PendingIntentOutputSerializer(many=True)


class AlertListFilterSerializer(StrictInputSerializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="The last sequence number you have.")
    account = serializers.IntegerField(min_value=1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    wait = serializers.IntegerField(
        min_value=0,
        max_value=25,
        default=25,
        help_text="Seconds to wait when nothing came after `after` (long poll); 0 answers at once.",
    )


class AlertOutputSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    intent = serializers.IntegerField(source="intent_id", allow_null=True)

    class Meta:
        model = GuardAlert
        fields = [
            "seq",
            "id",
            "account",
            "kind",
            "guard",
            "level",
            "value",
            "ticket",
            "symbol",
            "message",
            "detail",
            "intent",
            "created_at",
        ]
        read_only_fields = fields


class AlertLedgerOutputSerializer(serializers.Serializer):
    results = AlertOutputSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="Pass it as `after` on the next call.")
    has_more = serializers.BooleanField(help_text="More alerts are waiting: call again at once.")


class GuardResetInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the guard is reset (kept in the audit).")
    confirm_open_positions = serializers.BooleanField(
        default=False,
        help_text="Required (true) when closes of the liquidation failed: their positions stay open after the reset.",
    )


class GuardResetOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField(source="account_id")
    state = serializers.CharField(source="status")
    reset_at = serializers.DateTimeField()
    reset_by = serializers.CharField(source="reset_by.username", default=None, allow_null=True)
    reset_reason = serializers.CharField()
