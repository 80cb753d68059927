"""Serializer bases shared by the apps' APIs."""

from typing import Any

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """Unknown keys are an error (a misspelt `stop_loss` must not be silently ignored) — everywhere in the API."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        initial = getattr(self, "initial_data", {}) or {}
        unknown = sorted(set(initial) - set(self.fields)) if hasattr(initial, "keys") else []
        if unknown:
            raise serializers.ValidationError(dict.fromkeys(unknown, "Unknown field."))
        return attrs
