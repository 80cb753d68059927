from rest_framework import serializers

from notifications.models import USER_CHANNELS, DeliveryAttempt, Notification, Severity


class NotificationPreferenceItemSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=[c.value for c in USER_CHANNELS])
    enabled = serializers.BooleanField()
    min_severity = serializers.ChoiceField(choices=Severity.values)


class NotificationPreferencesUpdateInputSerializer(serializers.Serializer):
    time_zone = serializers.CharField(required=False, max_length=64)
    channels = NotificationPreferenceItemSerializer(many=True, required=False)


class NotificationPreferencesOutputSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    channels = serializers.ListField(child=serializers.DictField())


class TelegramLinkCodeOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_in = serializers.IntegerField()
    instructions = serializers.CharField()


class DeliveryAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ("number", "started_at", "duration_ms", "ok", "status_code", "error")


class NotificationOutputSerializer(serializers.ModelSerializer):
    attempts_detail = DeliveryAttemptOutputSerializer(source="delivery_attempts", many=True, read_only=True)

    class Meta:
        model = Notification
        fields = (
            "id",
            "event_key",
            "kind",
            "severity",
            "account",
            "channel",
            "destination",
            "occurred_at",
            "created_at",
            "state",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "attempts_detail",
        )
