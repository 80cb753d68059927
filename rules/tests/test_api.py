"""The rules API: owners create, edit and assign with a reason; operators read; a trader reads their own account's
rule set; bad terms are 400s naming the field, and nothing is stored."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.tests.factories import TradingAccountFactory
from rules.models import AccountRuleSetChange, RuleSet, RuleSetChange

pytestmark = pytest.mark.django_db


def _as(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_operators_list_rule_sets_and_presets(api_client, support):
    client = _as(api_client, support)
    body = client.get(reverse("rules-api:rule-sets")).json()
    assert body["count"] == 4
    assert {row["preset"] for row in body["results"]} == {"two_step", "one_step", "ny_close", "classic"}
    presets = client.get(reverse("rules-api:presets")).json()
    two = next(p for p in presets if p["key"] == "two_step")
    assert two["terms"]["daily_loss_percent"] == "5"
    assert two["terms"]["timezone"] == "Europe/Prague"


def test_owner_creates_from_a_preset_and_edits_with_history(api_client, owner):
    client = _as(api_client, owner)
    response = client.post(
        reverse("rules-api:rule-sets"),
        {"name": "Desk A", "preset": "one_step", "max_loss_percent": "8", "reason": "Desk A terms"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["max_loss_mode"], created["max_loss_percent"], created["revision"]) == (
        "eod_trailing",
        "8.0000",
        1,
    )
    url = reverse("rules-api:rule-set", kwargs={"rule_set_id": created["id"]})
    response = client.patch(url, {"reset_time": "17:00", "reason": "NY close"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["reset_time"], response.json()["revision"]) == ("17:00", 2)
    history = client.get(reverse("rules-api:rule-set-history", kwargs={"rule_set_id": created["id"]})).json()
    assert [row["revision"] for row in history["results"]] == [2, 1]
    newest = history["results"][0]
    assert (newest["changed_by"], newest["reason"], newest["changed"]) == (
        "owner",
        "NY close",
        ["reset_time"],
    )
    assert (newest["old"]["reset_time"], newest["new"]["reset_time"]) == ("00:00", "17:00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"daily_loss_percent": "0"}, "daily_loss_percent"),
        ({"max_loss_percent": -3}, "max_loss_percent"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"reset_time": "24:00"}, "reset_time"),
        ({"max_loss_mode": "trailing"}, "max_loss_mode"),
        ({"daily_loss_base": "credit"}, "daily_loss_base"),
        ({"daily_loss_of": "peak"}, "daily_loss_of"),
        ({"daily_loss_percent": "five"}, "daily_loss_percent"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_terms_are_a_400_naming_the_field_and_store_nothing(api_client, owner, body, field):
    client = _as(api_client, owner)
    row = RuleSet.objects.get(preset="two_step")
    before = (row.terms, RuleSetChange.objects.count(), RuleSet.objects.count())
    url = reverse("rules-api:rule-set", kwargs={"rule_set_id": row.pk})
    response = client.patch(url, body | {"reason": "bad"}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"]
    response = client.post(
        reverse("rules-api:rule-sets"), body | {"name": "Bad", "reason": "bad"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"]
    row.refresh_from_db()
    assert (row.terms, RuleSetChange.objects.count(), RuleSet.objects.count()) == before


def test_a_patch_without_a_reason_is_refused(api_client, owner):
    row = RuleSet.objects.get(preset="two_step")
    url = reverse("rules-api:rule-set", kwargs={"rule_set_id": row.pk})
    response = _as(api_client, owner).patch(url, {"daily_loss_percent": "4"}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["extra"]["fields"]


def test_an_unknown_rule_set_is_a_404(api_client, owner):
    response = _as(api_client, owner).get(reverse("rules-api:rule-set", kwargs={"rule_set_id": 999999}))
    assert response.status_code == 404


def test_owner_assigns_a_rule_set_and_the_trader_reads_it(api_client, owner, trader):
    account = TradingAccountFactory(owner=trader)
    url = reverse("rules-api:account-rule-set", kwargs={"account_id": account.pk})
    two = RuleSet.objects.get(preset="two_step")
    response = _as(api_client, trader).get(url)
    assert response.status_code == 200
    assert response.json()["assigned"] is False
    response = _as(api_client, owner).put(
        url,
        {
            "rule_set": two.pk,
            "initial_balance": "100000",
            "start": "2026-03-02T07:00:00Z",
            "reason": "Bought",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = _as(api_client, trader).get(url).json()
    assert body["assigned"] is True
    assert (body["rule_set"]["name"], body["initial_balance"], body["revision"]) == (
        "Two-step challenge",
        "100000.00",
        1,
    )
    assert body["start"] == "2026-03-02T07:00:00Z"
    history = (
        _as(api_client, owner)
        .get(reverse("rules-api:account-rule-set-history", kwargs={"account_id": account.pk}))
        .json()
    )
    assert history["results"][0]["new"]["rule_set_name"] == "Two-step challenge"
    assert history["results"][0]["changed_by"] == "owner"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rule_set": 999999}, "rule_set"),
        ({"initial_balance": "0"}, "initial_balance"),
        ({"initial_balance": "-1"}, "initial_balance"),
        ({"start": "2026-03-02T07:00:00"}, "start"),
        ({"start": "soon"}, "start"),
        ({"reason": ""}, "reason"),
    ],
)
def test_bad_assignments_are_a_400_and_store_nothing(api_client, owner, body, field):
    account = TradingAccountFactory()
    url = reverse("rules-api:account-rule-set", kwargs={"account_id": account.pk})
    good = {
        "rule_set": RuleSet.objects.first().pk,
        "initial_balance": "1000",
        "reason": "x",
        "start": datetime(2026, 3, 2, tzinfo=UTC).isoformat(),
    }
    response = _as(api_client, owner).put(url, good | body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"]
    assert not AccountRuleSetChange.objects.filter(account=account).exists()
