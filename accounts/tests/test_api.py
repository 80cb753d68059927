"""The accounts API: /me/, the account list and detail (scoped), snapshot history downsampled on the server."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader_account(trader):
    account = TradingAccountFactory(owner=trader, label="main")
    snapshot = AccountSnapshotFactory(account=account, equity=Decimal("9500.00"))
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    return account


@pytest.fixture
def other_account(other_trader):
    return TradingAccountFactory(owner=other_trader)


def test_me_lists_roles_permissions_and_visible_accounts(api_client, trader, trader_account, other_account):
    api_client.force_authenticate(trader)
    body = api_client.get(reverse("accounts-api:me")).json()
    assert body["username"] == "trader"
    assert body["role"] == "trader"
    assert body["roles"] == ["trader"]
    assert body["account_ids"] == [trader_account.pk]
    assert isinstance(body["permissions"], list)


def test_support_sees_every_account(api_client, support, trader_account, other_account):
    api_client.force_authenticate(support)
    body = api_client.get(reverse("accounts-api:me")).json()
    assert body["account_ids"] == sorted([trader_account.pk, other_account.pk])
    assert "guards.close_position" in body["permissions"]


def test_account_list_is_scoped_paginated_and_filtered(api_client, trader, trader_account, other_account):
    api_client.force_authenticate(trader)
    body = api_client.get(reverse("accounts-api:accounts")).json()
    assert body["count"] == 1
    (account,) = body["results"]
    assert account["id"] == trader_account.pk
    assert account["latest_snapshot"]["equity"] == "9500.00"
    assert account["latest_snapshot"]["fresh"] is True
    assert account["guard"]["state"] == "normal"
    assert account["health"] is None
    assert "password" not in str(account)
    assert "password_encrypted" not in account
    assert api_client.get(reverse("accounts-api:accounts"), {"search": "nope"}).json()["count"] == 0
    assert api_client.get(reverse("accounts-api:accounts"), {"status": "paused"}).json()["count"] == 0


@pytest.mark.parametrize("query", [{"limit": "-5"}, {"offset": "abc"}, {"limit": "0"}, {"status": "weird"}])
def test_bad_list_parameters_are_a_400(api_client, trader, trader_account, query):
    api_client.force_authenticate(trader)
    response = api_client.get(reverse("accounts-api:accounts"), query)
    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}


def test_another_traders_account_is_a_404(api_client, trader, other_account):
    api_client.force_authenticate(trader)
    for name in ("account", "account-snapshots"):
        response = api_client.get(reverse(f"accounts-api:{name}", kwargs={"account_id": other_account.pk}))
        assert response.status_code == 404
        assert set(response.json()) == {"message", "extra"}


def test_snapshot_history_is_downsampled_per_step(api_client, trader, trader_account):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for i, equity in enumerate(["100.00", "90.00", "95.00", "80.00", "85.00", "70.00"]):
        AccountSnapshotFactory(
            account=trader_account, equity=Decimal(equity), taken_at=start + timedelta(seconds=10 * i)
        )
    api_client.force_authenticate(trader)
    body = api_client.get(
        reverse("accounts-api:account-snapshots", kwargs={"account_id": trader_account.pk}),
        {"since": start.isoformat(), "until": (start + timedelta(minutes=1)).isoformat(), "step": 30},
    ).json()
    assert body["step"] == 30
    assert [(p["equity"], p["equity_min"], p["equity_max"], p["samples"]) for p in body["points"]] == [
        ("95.00", "90.00", "100.00", 3),
        ("70.00", "70.00", "85.00", 3),
    ]


def test_snapshot_history_refuses_too_many_points(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    url = reverse("accounts-api:account-snapshots", kwargs={"account_id": trader_account.pk})
    now = timezone.now()
    response = api_client.get(
        url, {"since": (now - timedelta(days=2)).isoformat(), "until": now.isoformat(), "step": 1}
    )
    assert response.status_code == 400
    assert "step" in response.json()["extra"]["fields"]


def test_unknown_api_url_answers_the_json_error_shape(api_client, trader):
    api_client.force_authenticate(trader)
    for url in ("/api/v1/nothing-here/", "/api/nothing/", "/api/v1/accounts/abc/"):
        response = api_client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"message", "extra"}


def test_a_database_outage_is_a_503_not_a_500(api_client, trader, trader_account, monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("sorry, too many clients already")

    monkeypatch.setattr("accounts.api.views.account_list_filtered", down)
    api_client.force_authenticate(trader)
    response = api_client.get(reverse("accounts-api:accounts"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert set(response.json()) == {"message", "extra"}
