"""Admin forms of rule sets and assignments. Their validation is the services' own (`rule_set_validate`), so the
admin, the API and the case file say the same thing about a bad value; nothing is stored while a field is wrong."""

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from rules.models import TERM_FIELDS, AccountRuleSet, DailyLossBase, DailyLossOf, MaxLossMode, RuleSet
from rules.presets import PRESETS
from rules.services import rule_set_validate


class RuleSetForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Required: why this changes."
    )
    start_from_preset = forms.ChoiceField(
        required=False,
        choices=[("", "— none (custom) —"), *((key, p["name"]) for key, p in PRESETS.items())],
        help_text="The preset these terms came from (use the links above the form to fill them in).",
    )
    # Free text so a wrong value gets our message, not only Django's "select a valid choice".
    timezone = forms.CharField(
        max_length=64, help_text="IANA time zone, e.g. Europe/Prague or America/New_York."
    )
    reset_time = forms.CharField(max_length=5, help_text="HH:MM, local time in the zone.")
    daily_loss_of = forms.ChoiceField(choices=DailyLossOf.choices)
    daily_loss_base = forms.ChoiceField(choices=DailyLossBase.choices)
    max_loss_mode = forms.ChoiceField(choices=MaxLossMode.choices)

    class Meta:
        model = RuleSet
        fields = ("name", "description", *TERM_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        # The service's checks run even when another field is wrong (the reason left empty, say), so every bad
        # value is named at once; a field that already has its message keeps only that one.
        try:
            rule_set_validate({name: cleaned.get(name) for name in ("name", *TERM_FIELDS) if name in cleaned})
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                if field not in self.errors:
                    self.add_error(field if field in self.fields else None, messages)
        return cleaned


class AccountRuleSetForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Required: why this changes."
    )

    class Meta:
        model = AccountRuleSet
        fields = ("account", "rule_set", "initial_balance", "start")

    def clean_initial_balance(self) -> Any:
        value = self.cleaned_data.get("initial_balance")
        if value is not None and value <= 0:
            raise ValidationError("Initial balance must be a positive number.")
        return value


class RuleSetPageForm(RuleSetForm):
    """The /risk/ page's form (create and edit). Creating, the preset is chosen with the links above the form and
    carried in a hidden field; editing, there is no preset."""

    start_from_preset = forms.ChoiceField(
        required=False,
        choices=[("", "custom"), *((key, p["name"]) for key, p in PRESETS.items())],
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["description"].widget.attrs["rows"] = 2
        if self.instance.pk is not None:
            del self.fields["start_from_preset"]
            for name, value in self.initial.items():  # 5, not 5.0000
                if isinstance(value, Decimal):
                    self.initial[name] = format(value.normalize(), "f")
        else:
            self.initial = {"timezone": "UTC", "reset_time": "00:00"} | self.initial


class AccountRuleSetAssignForm(forms.Form):
    """The account page's "put under a rule set" form (owners); the service checks again."""

    rule_set = forms.ModelChoiceField(queryset=RuleSet.objects.order_by("name"), empty_label=None)
    initial_balance = forms.DecimalField(
        max_digits=20, decimal_places=2, help_text="The balance the programme started the account with."
    )
    start = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
        help_text="When the evaluation starts, in your time zone. Empty: now.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: why the account is put under this rule set.",
        error_messages={"required": "Give a reason."},
    )

    def clean_initial_balance(self) -> Any:
        value = self.cleaned_data.get("initial_balance")
        if value is not None and value <= 0:
            raise ValidationError("Initial balance must be a positive number.")
        return value


class CloseOnlyLiftForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: why new setups may be sized again (kept on the account's rules state).",
        error_messages={"required": "Give a reason for lifting close-only."},
    )
