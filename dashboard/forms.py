"""Forms of the dashboard pages: validated on the server, each message beside its field."""

from django import forms


class GuardResetForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: why trading may resume on this account (kept in the audit).",
        error_messages={"required": "Give a reason for the reset."},
    )
    confirm_open_positions = forms.BooleanField(
        required=False,
        label="Positions the liquidation could not close stay open: reset anyway",
    )
