"""The risk configuration form: the admin's add form and the /risk/ page use it, and its validation is the
service's own (risk_config_validate), so every place says the same thing about a bad value."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from risk.models import RiskConfigVersion
from risk.services import risk_config_validate


class EntrySplitsField(forms.CharField):
    """'50, 35, 15' (or '50/35/15') in the form; a list of decimal strings in cleaned_data (the stored form)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(part) for part in value)
        return value

    def to_python(self, value: Any) -> Any:  # list[str]
        text = super().to_python(value) or ""
        try:
            return [format(Decimal(part), "f") for part in text.replace("/", ",").split(",") if part.strip()]
        except InvalidOperation:
            raise ValidationError("Give numbers separated by commas, e.g. 50, 35, 15.") from None


class RiskConfigChangeForm(forms.ModelForm):
    entry_splits = EntrySplitsField(
        help_text="Percent of the risk budget per entry: 1 to 3 positive parts summing to 100, e.g. 50, 35, 15."
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Required: why the configuration changes."
    )

    class Meta:
        model = RiskConfigVersion
        fields = (
            "risk_percent",
            "entry_splits",
            "margin_buffer_percent",
            "max_snapshot_age_seconds",
            "reason",
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.errors:
            # The service's own validation, so the admin shows the same field messages as the API.
            try:
                risk_config_validate(
                    risk_percent=cleaned["risk_percent"],
                    entry_splits=cleaned["entry_splits"],
                    margin_buffer_percent=cleaned["margin_buffer_percent"],
                    max_snapshot_age_seconds=cleaned["max_snapshot_age_seconds"],
                    reason=cleaned["reason"],
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
        return cleaned
