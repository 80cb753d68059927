"""The rules admin: owners create and edit rule sets and assignments through forms that need a reason and show the
service's field messages; support reads; nothing is stored on an error."""

import pytest
from django.urls import reverse

from accounts.tests.factories import TradingAccountFactory
from rules.models import AccountRuleSet, RuleSet, RuleSetChange

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:rules_ruleset_add")


def _form(row: RuleSet, **changes):
    data = {name: ("" if value is None else value) for name, value in row.terms.items()}
    for flag in ("max_loss_lock_at_initial", "close_only_on_warning"):
        if not data[flag]:
            data.pop(flag)
    return data | {"reason": "admin edit"} | changes


def test_owner_edits_a_rule_set_and_the_change_is_recorded(client, owner):
    row = RuleSet.objects.get(preset="two_step")
    client.force_login(owner)
    url = reverse("admin:rules_ruleset_change", args=[row.pk])
    response = client.post(url, _form(row, daily_loss_percent="4"))
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert (row.daily_loss_percent, row.revision) == (4, 2)
    change = row.changes.get(revision=2)
    assert (change.changed_by, change.reason, change.old["daily_loss_percent"]) == (owner, "admin edit", "5")
    assert "admin edit" in client.get(url).content.decode()  # the history on the page


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"daily_loss_percent": "0"}, "daily_loss_percent", "positive"),
        ({"timezone": "Nowhere/Land"}, "timezone", "unknown time zone"),
        ({"reset_time": "9am"}, "reset_time", "HH:MM"),
        ({"reason": ""}, "reason", "required"),
    ],
)
def test_bad_values_show_field_messages_and_store_nothing(client, owner, change, field, words):
    row = RuleSet.objects.get(preset="two_step")
    before = (row.terms, RuleSetChange.objects.count())
    client.force_login(owner)
    response = client.post(reverse("admin:rules_ruleset_change", args=[row.pk]), _form(row, **change))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field]).lower() or words in " ".join(errors[field])
    row.refresh_from_db()
    assert (row.terms, RuleSetChange.objects.count()) == before


def test_owner_adds_a_rule_set_from_a_preset(client, owner):
    client.force_login(owner)
    page = client.get(ADD_URL + "?preset=one_step")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert (form.initial["max_loss_mode"], form.initial["start_from_preset"]) == ("eod_trailing", "one_step")
    data = _form(
        RuleSet.objects.get(preset="one_step"),
        name="From preset",
        profit_target_percent="12",
        start_from_preset="one_step",
        reason="new desk",
    )
    response = client.post(ADD_URL, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = RuleSet.objects.get(name="From preset")
    assert (row.preset, row.max_loss_mode, row.max_loss_percent, row.profit_target_percent) == (
        "one_step",
        "eod_trailing",
        6,
        12,
    )
    assert row.changes.get().changed_by == owner


def test_owner_assigns_an_account_in_the_admin(client, owner):
    account = TradingAccountFactory()
    client.force_login(owner)
    two = RuleSet.objects.get(preset="two_step")
    response = client.post(
        reverse("admin:rules_accountruleset_add"),
        {
            "account": account.pk,
            "rule_set": two.pk,
            "initial_balance": "25000",
            "start_0": "2026-03-02",
            "start_1": "07:00:00",
            "reason": "bought",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = AccountRuleSet.objects.get(account=account)
    assert (row.rule_set, row.initial_balance, row.revision, row.assigned_by) == (two, 25000, 1, owner)


def test_support_reads_but_cannot_change(client, support):
    row = RuleSet.objects.get(preset="two_step")
    client.force_login(support)
    assert client.get(reverse("admin:rules_ruleset_changelist")).status_code == 200
    url = reverse("admin:rules_ruleset_change", args=[row.pk])
    assert client.get(url).status_code == 200
    client.post(url, _form(row, daily_loss_percent="4"))
    row.refresh_from_db()
    assert row.revision == 1
    assert client.get(ADD_URL).status_code == 403
