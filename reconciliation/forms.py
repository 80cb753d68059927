"""Forms of the divergence inspector (server-side validation, one message per field)."""

from django import forms

from reconciliation.models import EventKind, EventState
from reconciliation.selectors import EVENT_AGES

_AGES = [("", "any age"), *[(key, key) for key in EVENT_AGES]]


class EventFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "any kind"), *EventKind.choices], required=False)
    state = forms.ChoiceField(
        choices=[("active", "open or acknowledged"), ("", "any state"), *EventState.choices], required=False
    )
    account = forms.IntegerField(required=False, min_value=1)
    symbol = forms.CharField(required=False, max_length=32)
    older_than = forms.ChoiceField(choices=_AGES, required=False, label="Older than")
    newer_than = forms.ChoiceField(choices=_AGES, required=False, label="Newer than")


class EventNoteForm(forms.Form):
    note = forms.CharField(
        max_length=2000, required=False, strip=True, widget=forms.Textarea(attrs={"rows": 2})
    )


class EventResolveForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say how the divergence was resolved."},
    )
